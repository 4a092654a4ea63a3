CREATE OR REPLACE TRIGGER appointments_composite_matches_service
    BEFORE INSERT OR UPDATE OF service_id, is_composite ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__match_composite();
