-- A constraint trigger has no CREATE OR REPLACE: drop and create (in one transaction).
DROP TRIGGER IF EXISTS appointments_composite_has_phases ON appointments;
CREATE CONSTRAINT TRIGGER appointments_composite_has_phases
    AFTER INSERT OR UPDATE OF service_id, starts_at, is_composite, status ON appointments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.is_composite)
    EXECUTE FUNCTION calsync.tg_appointments__derive_phases_at_commit();
