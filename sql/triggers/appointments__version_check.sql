-- Rule: optimistic locking. Every update increments appointments.version. An update that sets version
-- to anything but the row's current version is working from a stale read and is refused (40001).
CREATE OR REPLACE FUNCTION calsync.tg_appointments__check_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version IS DISTINCT FROM OLD.version THEN
        RAISE EXCEPTION USING
            ERRCODE = '40001',
            CONSTRAINT = 'appointments_version_check',
            MESSAGE = format('appointment %s was changed by someone else: your update is based on version %s, the row is at version %s',
                             OLD.id, NEW.version, OLD.version),
            HINT = 'Reload the appointment and apply your change again (or leave version out of the UPDATE to skip the check).';
    END IF;
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__check_version() IS
    'Trigger appointments_version_check: refuses a stale version with SQLSTATE 40001, else increments version.';

CREATE OR REPLACE TRIGGER appointments_version_check
    BEFORE UPDATE ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__check_version();
