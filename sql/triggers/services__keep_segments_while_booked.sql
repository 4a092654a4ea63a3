-- Rule: a composite service's segments can't be emptied (nor composite switched off) while upcoming live
-- appointments use it; the app's event-type import once set segments to NULL on every sync. Nor can a
-- simple service become composite while it is booked: its bookings were made without phases and would
-- contradict their service (is_composite follows the service). Refused, not re-derived: new phases would
-- change the staff's busy time and the bookings at Cal.com behind the salon's back.
CREATE OR REPLACE FUNCTION calsync.tg_services__keep_segments_while_booked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_first bigint;
    v_problem text;
BEGIN
    IF NOT OLD.composite AND NOT NEW.composite THEN
        RETURN NEW;
    END IF;
    v_problem := CASE WHEN NEW.composite THEN calsync.segments_problem(NEW.segments) END;
    IF OLD.composite AND NEW.composite AND v_problem IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT count(*), min(id) INTO v_count, v_first
    FROM appointments
    WHERE service_id = OLD.id AND status NOT IN ('cancelled', 'no_show') AND ends_at > now();
    IF v_count > 0 AND NOT OLD.composite THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is simple and booked by %s upcoming appointment(s) (first: #%s): it cannot become composite',
                             OLD.id, OLD.name, v_count, v_first),
            HINT = 'Those bookings were made without phases: create a new composite service for new bookings, or move or cancel them first.';
    ELSIF v_count > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is composite and booked by %s upcoming appointment(s) (first: #%s): %s',
                             OLD.id, OLD.name, v_count, v_first,
                             CASE WHEN NOT NEW.composite THEN 'it cannot stop being composite'
                                  ELSE 'its segments cannot be replaced by unusable ones (' || v_problem || ')' END),
            HINT = 'Keep the segments (an import that does not carry them must leave the column out), or move or cancel those appointments first.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_services__keep_segments_while_booked() IS
    'Trigger services_keep_segments_while_booked: while upcoming appointments use a service, it keeps composite as it is and a composite keeps usable segments.';

CREATE OR REPLACE TRIGGER services_keep_segments_while_booked
    BEFORE UPDATE OF segments, composite ON services
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_services__keep_segments_while_booked();
