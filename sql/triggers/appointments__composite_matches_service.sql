-- Rule: appointments.is_composite agrees with the service's `composite` flag. On insert, and when the
-- service changes, it is taken from the service (the app never set it reliably); an update that sets
-- it against the service is refused.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__match_composite() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_composite boolean;
    v_name text;
BEGIN
    IF NEW.service_id IS NULL THEN
        RETURN NEW;  -- appointments_service_required refuses live rows without a service
    END IF;
    SELECT composite, name INTO v_composite, v_name FROM services WHERE id = NEW.service_id;
    IF TG_OP = 'INSERT' OR NEW.service_id IS DISTINCT FROM OLD.service_id THEN
        NEW.is_composite := coalesce(v_composite, false);
    ELSIF NEW.is_composite IS DISTINCT FROM coalesce(v_composite, false) THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'appointments_composite_matches_service',
            MESSAGE = format('appointment %s: is_composite = %s contradicts service %s (%s), whose composite = %s',
                             NEW.id, NEW.is_composite, NEW.service_id, v_name, v_composite),
            HINT = 'is_composite follows the service: leave it out of the UPDATE, or change service_id.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__match_composite() IS
    'Trigger appointments_composite_matches_service: is_composite is copied from the service; a contradicting update is refused (23514).';

CREATE OR REPLACE TRIGGER appointments_composite_matches_service
    BEFORE INSERT OR UPDATE OF service_id, is_composite ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__match_composite();
