-- At commit: a composite appointment still without phases is busy for its whole time.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        PERFORM calsync.refresh_host_busy_time(ARRAY[NEW.id], true);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() IS
    'Deferred trigger appointments_reserve_host_time_at_commit: a composite appointment without phases is busy for its whole time.';

-- A constraint trigger has no CREATE OR REPLACE: drop and create (in one transaction). Its name sorts
-- after appointments_composite_has_phases, so at commit the phases are derived before this runs.
DROP TRIGGER IF EXISTS appointments_reserve_host_time_at_commit ON appointments;
CREATE CONSTRAINT TRIGGER appointments_reserve_host_time_at_commit
    AFTER INSERT OR UPDATE OF starts_at, ends_at, staff_id, status, service_id ON appointments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.is_composite)
    EXECUTE FUNCTION calsync.tg_appointments__reserve_host_time_at_commit();
