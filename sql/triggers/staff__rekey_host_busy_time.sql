-- A staff row linked to another Cal.com user (or none): its bookings become that host's busy time. Its
-- rows carry its old key, so they are found through the exclusion constraint's index.
CREATE OR REPLACE FUNCTION calsync.tg_staff__rekey_host_busy_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE calsync.host_busy_time SET host_id = calsync.host_id(NEW.calcom_user_id, NEW.id)
    WHERE host_id = calsync.host_id(OLD.calcom_user_id, OLD.id) AND staff_id = NEW.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_staff__rekey_host_busy_time() IS
    'Trigger staff_rekey_host_busy_time: a staff row''s new Cal.com user makes its bookings that user''s busy time.';

CREATE OR REPLACE TRIGGER staff_rekey_host_busy_time
    AFTER UPDATE OF calcom_user_id ON staff
    FOR EACH ROW WHEN (NEW.calcom_user_id IS DISTINCT FROM OLD.calcom_user_id)
    EXECUTE FUNCTION calsync.tg_staff__rekey_host_busy_time();
