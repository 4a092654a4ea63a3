-- Rule: a live composite appointment has its phases. At commit (a deferred constraint trigger), one
-- without phases gets them derived from its service's segments; when the segments are unusable it is
-- flagged instead: calcom_sync_status failed, requires_manual_review, and a row in integrity_issues.

CREATE OR REPLACE FUNCTION calsync.tg_appointments__derive_phases_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- the common case (it has its phases) in one query, without calling the function
    IF NOT EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        PERFORM calsync.create_missing_phases(NEW.id, 'trigger appointments_composite_has_phases');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__derive_phases_at_commit() IS
    'Deferred trigger appointments_composite_has_phases: at commit, a live composite appointment without phases gets them (or is flagged).';

-- A constraint trigger has no CREATE OR REPLACE: drop and create (in one transaction).
DROP TRIGGER IF EXISTS appointments_composite_has_phases ON appointments;
CREATE CONSTRAINT TRIGGER appointments_composite_has_phases
    AFTER INSERT OR UPDATE OF service_id, starts_at, is_composite, status ON appointments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.is_composite)
    EXECUTE FUNCTION calsync.tg_appointments__derive_phases_at_commit();
