CREATE OR REPLACE TRIGGER staff_rekey_host_busy_time
    AFTER UPDATE OF calcom_user_id ON staff
    FOR EACH ROW WHEN (NEW.calcom_user_id IS DISTINCT FROM OLD.calcom_user_id)
    EXECUTE FUNCTION calsync.tg_staff__rekey_host_busy_time();
