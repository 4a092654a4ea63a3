CREATE OR REPLACE TRIGGER appointments_enqueue_sync
    AFTER INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE OR REPLACE TRIGGER appointments_enqueue_sync_on_change
    AFTER UPDATE OF status, starts_at, staff_id, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();
