CREATE OR REPLACE TRIGGER appointments_reserve_host_time
    AFTER INSERT ON appointments
    FOR EACH ROW
    WHEN (NOT NEW.is_composite AND NEW.staff_id IS NOT NULL AND NEW.status NOT IN ('cancelled', 'no_show')
          AND NEW.ends_at > NEW.starts_at)
    EXECUTE FUNCTION calsync.tg_appointments__reserve_host_time();

CREATE OR REPLACE TRIGGER appointments_reserve_host_time_on_change
    AFTER UPDATE OF starts_at, ends_at, staff_id, status, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.status IS DISTINCT FROM OLD.status
          OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__update_host_time();

CREATE OR REPLACE TRIGGER appointments_release_host_time
    AFTER DELETE ON appointments REFERENCING OLD TABLE AS old_appointments
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointments__release_host_time();
