-- Rule: a live composite appointment has its phases. At commit (a deferred constraint trigger), one
-- without phases gets them derived from its service's segments; when the segments are unusable it is
-- flagged instead: calcom_sync_status failed, requires_manual_review, and a row in integrity_issues.

CREATE OR REPLACE FUNCTION calsync.tg_appointments__derive_phases_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.create_missing_phases(NEW.id, 'trigger appointments_composite_has_phases');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__derive_phases_at_commit() IS
    'Deferred trigger appointments_composite_has_phases: at commit, a live composite appointment without phases gets them (or is flagged).';

-- Rescheduling shifts the phases (a move that would take them past timestamptz's range is refused by the
-- rule appointment_phases_within_time_range); a new service supersedes them (kept in
-- calsync.superseded_phases with their Cal.com bookings) and the deferred trigger derives the new
-- service's phases at commit.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__keep_phases_in_step() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.service_id IS DISTINCT FROM OLD.service_id THEN
        WITH gone AS (
            DELETE FROM appointment_phases WHERE appointment_id = NEW.id
            RETURNING id, appointment_id, sequence_order, phase_type, segment_key, segment_name, staff_required,
                      start_time, end_time, calcom_booking_id, calcom_booking_uid, calcom_sync_status
        )
        INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                               segment_name, staff_required, start_time, end_time,
                                               calcom_booking_id, calcom_booking_uid, calcom_sync_status, reason)
        SELECT gone.*, format('service changed from %s to %s', OLD.service_id, NEW.service_id) FROM gone;
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at THEN
        IF EXISTS (SELECT 1 FROM appointment_phases
                   WHERE appointment_id = NEW.id
                     AND NOT calsync.phase_fits_time_range(NEW.starts_at, start_offset_minutes, duration_minutes)) THEN
            PERFORM calsync.refuse_phases_outside_time_range(NEW.id, NEW.starts_at);
        END IF;
        UPDATE appointment_phases
        SET start_time = NEW.starts_at + make_interval(mins => start_offset_minutes),
            end_time = NEW.starts_at + make_interval(mins => start_offset_minutes) + make_interval(mins => duration_minutes),
            updated_at = now()
        WHERE appointment_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__keep_phases_in_step() IS
    'Trigger appointments_phases_follow_appointment: a reschedule shifts the phases, a service change supersedes them.';

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

-- Backfill of the revision: existing live composite appointments without phases, in batches by id. The
-- phases complete old rows; they are not news for Cal.com (calsync.writer = 'backfill': nothing enqueued),
-- so bookings made before are not rebooked. A failing one is retried by the runbook's requeue step.
CREATE OR REPLACE FUNCTION calsync.backfill_composite_phases(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_id bigint;
BEGIN
    PERFORM set_config('calsync.writer', 'backfill', true);
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM appointments WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    FOR v_id IN
        SELECT a.id FROM appointments a
        WHERE a.id > p_after_id AND a.id <= v_last AND a.is_composite
          AND a.status NOT IN ('cancelled', 'no_show')
          AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
        ORDER BY a.id
    LOOP
        PERFORM calsync.create_missing_phases(v_id, 'backfill of revision 0011');
    END LOOP;
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.backfill_composite_phases(bigint, integer) IS
    'One batch of the composite-phases backfill: appointments with id in (after_id, returned id]; NULL when done.';
