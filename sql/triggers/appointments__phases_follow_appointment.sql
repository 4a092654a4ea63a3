CREATE OR REPLACE TRIGGER appointments_phases_follow_appointment
    AFTER UPDATE OF starts_at, service_id ON appointments
    FOR EACH ROW WHEN (NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__keep_phases_in_step();
