CREATE OR REPLACE TRIGGER appointments_version_check
    BEFORE UPDATE ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__check_version();
