-- Frozen SQL of revision 0009 (never edit; sql/ holds the current definitions).

-- name: tables
CREATE TABLE calsync.superseded_phases (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phase_id            bigint NOT NULL,
    appointment_id      bigint NOT NULL,
    sequence_order      bigint,
    phase_type          text,
    segment_key         text,
    segment_name        text,
    staff_required      boolean,
    start_time          timestamptz,
    end_time            timestamptz,
    calcom_booking_id   bigint,
    calcom_booking_uid  text,
    calcom_sync_status  text,
    superseded_at       timestamptz NOT NULL DEFAULT now(),
    reason              text NOT NULL
);
CREATE INDEX superseded_phases_appointment_id_index ON calsync.superseded_phases (appointment_id);
COMMENT ON TABLE calsync.superseded_phases IS
    'Phases replaced when an appointment changed service, kept with their Cal.com bookings (which the sync must cancel).';

-- name: functions
-- Rule: a live composite appointment has its phases. At commit (a deferred constraint trigger), one
-- without phases gets them derived from its service's segments; when the segments are unusable it is
-- flagged instead: calcom_sync_status failed, requires_manual_review, and a row in integrity_issues.

CREATE OR REPLACE FUNCTION calsync.create_missing_phases(p_appointment_id bigint, p_found_by text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_appt appointments%ROWTYPE;
    v_segments jsonb;
    v_service text;
    v_problem text;
    v_count integer;
BEGIN
    -- the row lock serialises this with writers of the same appointment (phase inserts take KEY SHARE)
    SELECT * INTO v_appt FROM appointments WHERE id = p_appointment_id FOR UPDATE;
    IF NOT FOUND OR NOT v_appt.is_composite OR v_appt.status IN ('cancelled', 'no_show')
       OR EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = p_appointment_id) THEN
        RETURN 0;
    END IF;
    SELECT segments, name INTO v_segments, v_service FROM services WHERE id = v_appt.service_id;
    v_problem := calsync.segments_problem(v_segments);
    IF v_problem IS NULL THEN
        INSERT INTO appointment_phases (appointment_id, phase_type, segment_name, segment_key, sequence_order,
                                        start_offset_minutes, duration_minutes, staff_required, start_time,
                                        end_time, calcom_sync_status)
        SELECT p_appointment_id, d.phase_type, d.segment_name, d.segment_key, d.sequence_order,
               d.start_offset_minutes, d.duration_minutes, d.staff_required,
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes),
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes + d.duration_minutes),
               'pending'
        FROM calsync.derive_phases(v_segments) AS d;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        RETURN v_count;
    END IF;
    UPDATE appointments
    SET calcom_sync_status = 'failed',
        requires_manual_review = true,
        manual_review_flagged_at = coalesce(manual_review_flagged_at, now()),
        sync_error_code = 'COMPOSITE_FAILURE',
        sync_error_message = format('composite appointment without phases: %s (service %s, %s)',
                                    v_problem, v_appt.service_id, v_service)
    WHERE id = p_appointment_id;
    INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
    VALUES ('appointments_composite_has_phases', 'appointments', p_appointment_id,
            format('no phases could be derived: %s (service %s, %s)', v_problem, v_appt.service_id, v_service),
            p_found_by)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING;
    RETURN 0;
END
$$;
COMMENT ON FUNCTION calsync.create_missing_phases(bigint, text) IS
    'Derive the phases of a live composite appointment that has none, or flag it for manual review when its service''s segments are unusable. Returns the phases created.';

CREATE OR REPLACE FUNCTION calsync.tg_appointments__derive_phases_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.create_missing_phases(NEW.id, 'trigger appointments_composite_has_phases');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__derive_phases_at_commit() IS
    'Deferred trigger appointments_composite_has_phases: at commit, a live composite appointment without phases gets them (or is flagged).';

-- Rescheduling shifts the phases; a new service supersedes them (kept in calsync.superseded_phases with
-- their Cal.com bookings) and the deferred trigger derives the new service's phases at commit.
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
        UPDATE appointment_phases
        SET start_time = NEW.starts_at + make_interval(mins => start_offset_minutes),
            end_time = NEW.starts_at + make_interval(mins => start_offset_minutes + duration_minutes),
            updated_at = now()
        WHERE appointment_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__keep_phases_in_step() IS
    'Trigger appointments_phases_follow_appointment: a reschedule shifts the phases, a service change supersedes them.';

-- Rule: a composite service's segments can't be emptied (nor composite switched off) while upcoming live
-- appointments use it; the app's event-type import once set segments to NULL on every sync.
CREATE OR REPLACE FUNCTION calsync.tg_services__keep_segments_while_booked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_first bigint;
BEGIN
    IF NOT OLD.composite OR (NEW.composite AND calsync.segments_problem(NEW.segments) IS NULL) THEN
        RETURN NEW;
    END IF;
    SELECT count(*), min(id) INTO v_count, v_first
    FROM appointments
    WHERE service_id = OLD.id AND status NOT IN ('cancelled', 'no_show') AND ends_at > now();
    IF v_count > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is composite and booked by %s upcoming appointment(s) (first: #%s): %s',
                             OLD.id, OLD.name, v_count, v_first,
                             CASE WHEN NOT NEW.composite THEN 'it cannot stop being composite'
                                  ELSE 'its segments cannot be replaced by unusable ones ('
                                       || calsync.segments_problem(NEW.segments) || ')' END),
            HINT = 'Keep the segments (an import that does not carry them must leave the column out), or move or cancel those appointments first.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_services__keep_segments_while_booked() IS
    'Trigger services_keep_segments_while_booked: refuses emptying a composite service''s segments while upcoming appointments use it.';

-- Backfill of the revision: existing live composite appointments without phases, in batches by id.
CREATE OR REPLACE FUNCTION calsync.backfill_composite_phases(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_id bigint;
BEGIN
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
        PERFORM calsync.create_missing_phases(v_id, 'backfill of revision 0009');
    END LOOP;
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.backfill_composite_phases(bigint, integer) IS
    'One batch of the composite-phases backfill: appointments with id in (after_id, returned id]; NULL when done.';

-- name: trigger_composite_has_phases
-- A constraint trigger has no CREATE OR REPLACE: drop and create (in one transaction).
DROP TRIGGER IF EXISTS appointments_composite_has_phases ON appointments;
CREATE CONSTRAINT TRIGGER appointments_composite_has_phases
    AFTER INSERT OR UPDATE OF service_id, starts_at, is_composite, status ON appointments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.is_composite)
    EXECUTE FUNCTION calsync.tg_appointments__derive_phases_at_commit();

-- name: trigger_phases_follow_appointment
CREATE OR REPLACE TRIGGER appointments_phases_follow_appointment
    AFTER UPDATE OF starts_at, service_id ON appointments
    FOR EACH ROW WHEN (NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__keep_phases_in_step();

-- name: trigger_keep_segments_while_booked
CREATE OR REPLACE TRIGGER services_keep_segments_while_booked
    BEFORE UPDATE OF segments, composite ON services
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_services__keep_segments_while_booked();

-- name: drop
DROP FUNCTION calsync.backfill_composite_phases(bigint, integer);
DROP FUNCTION calsync.tg_services__keep_segments_while_booked();
DROP FUNCTION calsync.tg_appointments__keep_phases_in_step();
DROP FUNCTION calsync.tg_appointments__derive_phases_at_commit();
DROP FUNCTION calsync.create_missing_phases(bigint, text);
DROP TABLE calsync.superseded_phases;
