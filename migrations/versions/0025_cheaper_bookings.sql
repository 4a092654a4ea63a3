-- Frozen SQL of revision 0025 (never edit; sql/ holds the current definitions).

-- name: triggers
-- from: sql/triggers/appointment_phases__reserve_host_time.sql
-- from: sql/triggers/appointments__enqueue_sync.sql
-- from: sql/triggers/outbox__record_company.sql
-- from: sql/triggers/appointments__composite_has_phases.sql
-- from: sql/triggers/appointments__phases_follow_appointment.sql
-- New phases (one pass per statement, however many phases it inserts): their appointments are busy in
-- their staff-required phases instead of their whole time, one row each.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__insert_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM new_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__insert_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_insert: new phases reserve their host''s time.';

-- Changed phases (one pass per statement): recompute the appointments whose phases changed in what decides the
-- busy time (an appointment, staff need or time; the app rewrites unchanged phases, which cost one query over the
-- statement's transition tables and nothing else), and the appointments they left. A moved Dauerwelle's phases
-- are one recomputation, not one per phase. Joined on the phase id; a phase whose id changed counts as changed.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
BEGIN
    SELECT array_agg(DISTINCT x.appointment_id) INTO v_ids
    FROM old_phases o FULL JOIN new_phases n ON n.id = o.id
    CROSS JOIN LATERAL (VALUES (o.appointment_id), (n.appointment_id)) AS x(appointment_id)
    WHERE x.appointment_id IS NOT NULL
      AND (o.id IS NULL OR n.id IS NULL OR n.appointment_id IS DISTINCT FROM o.appointment_id
           OR ((n.staff_required OR o.staff_required)
               AND (n.staff_required, n.start_time, n.end_time) IS DISTINCT FROM (o.staff_required, o.start_time, o.end_time)));
    IF v_ids IS NOT NULL THEN
        PERFORM calsync.refresh_host_busy_time(v_ids, false);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__update_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_update: keep the busy time of appointments whose phases changed current.';

-- Deleted phases: recompute their appointments (which may now be busy for their whole time).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__delete_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM old_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__delete_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_delete: deleted phases free their time.';

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__insert_host_time();

-- A statement trigger (its transition tables are the ones appointment_phases_enqueue_sync_update captures
-- already): one recomputation per statement, however many phases of an appointment it moved.
DROP TRIGGER IF EXISTS appointment_phases_reserve_host_time_update ON appointment_phases;
CREATE TRIGGER appointment_phases_reserve_host_time_update
    AFTER UPDATE ON appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__update_host_time();

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__delete_host_time();

-- An appointment created with a bookable status enqueues a create; cancelling it a cancel; becoming
-- bookable again a create; a change of starts_at, staff or service while bookable a reschedule. Not for a change
-- from Cal.com (calsync.is_sync_loop: a write that marks the row sync_origin = 'calcom', or calsync's webhooks).
CREATE OR REPLACE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    IF calsync.is_sync_loop(CASE WHEN TG_OP = 'INSERT' OR NEW.sync_origin IS DISTINCT FROM OLD.sync_origin
                                 THEN NEW.sync_origin END) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NOT calsync.is_bookable_status(NEW.status) THEN
            RETURN NULL;
        END IF;
        v_type := 'create';
    ELSIF NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled' THEN
        v_type := 'cancel';
    ELSIF calsync.is_bookable_status(NEW.status) AND NOT calsync.is_bookable_status(OLD.status) THEN
        v_type := 'create';
    ELSIF calsync.is_bookable_status(NEW.status)
          AND (NEW.starts_at, NEW.staff_id, NEW.service_id) IS DISTINCT FROM (OLD.starts_at, OLD.staff_id, OLD.service_id) THEN
        v_type := 'reschedule';
    ELSE
        RETURN NULL;
    END IF;
    -- the row calsync.enqueue_sync writes, inserted here (the app's every booking and move runs this: a function
    -- call less), with the company the row already has (outbox_record_company then has nothing to look up)
    INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload, company_id)
    VALUES ('appointment', NEW.id::text, v_type, jsonb_build_object(
        'appointment_id', NEW.id, 'status', NEW.status, 'starts_at', NEW.starts_at, 'ends_at', NEW.ends_at,
        'staff_id', NEW.staff_id, 'service_id', NEW.service_id, 'customer_id', NEW.customer_id,
        'calcom_v2_booking_uid', NEW.calcom_v2_booking_uid), NEW.company_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__enqueue_sync() IS
    'Trigger appointments_enqueue_sync: create, cancel and reschedule events into calsync.outbox, in the booking''s transaction.';

CREATE OR REPLACE TRIGGER appointments_enqueue_sync
    AFTER INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE OR REPLACE TRIGGER appointments_enqueue_sync_on_change
    AFTER UPDATE OF status, starts_at, staff_id, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

-- Each outbox event carries its appointment's company (calsync.outbox.company_id), so that the claim can share
-- the work out between companies (calsync.claim_sync_events) without reading the appointments. One primary-key
-- lookup per event, in the booking's transaction; an event whose appointment is gone gets none.
CREATE OR REPLACE FUNCTION calsync.tg_outbox__record_company() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.company_id IS NULL AND NEW.aggregatetype = 'appointment' THEN
        NEW.company_id := (SELECT a.company_id FROM appointments a WHERE a.id = NEW.aggregateid::bigint);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__record_company() IS
    'Trigger outbox_record_company: an event carries its appointment''s company (the claim''s fair share).';

-- Only for an event that comes without its company (the appointments' trigger passes it along).
CREATE OR REPLACE TRIGGER outbox_record_company
    BEFORE INSERT ON calsync.outbox
    FOR EACH ROW WHEN (NEW.company_id IS NULL AND NEW.aggregatetype = 'appointment')
    EXECUTE FUNCTION calsync.tg_outbox__record_company();

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
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at
          -- an appointment without phases (every simple one) has nothing to shift: one index probe, and no
          -- UPDATE whose statement triggers would run for no row
          AND EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
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

CREATE OR REPLACE TRIGGER appointments_phases_follow_appointment
    AFTER UPDATE OF starts_at, service_id ON appointments
    FOR EACH ROW WHEN (NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__keep_phases_in_step();

-- name: previous_triggers
-- revision 0024's definitions (as revisions 0019, 0021, 0023 and 0018 left them); the statement trigger goes first
DROP TRIGGER IF EXISTS appointment_phases_reserve_host_time_update ON appointment_phases;
-- New phases (one pass per statement, however many phases it inserts): their appointments are busy in
-- their staff-required phases instead of their whole time, one row each.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__insert_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM new_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__insert_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_insert: new phases reserve their host''s time.';

-- A changed phase (a row trigger whose WHEN lets through only changes of what decides the busy time, so
-- the app's unchanged rewrites of phases and its statements that change no row cost nothing): recompute
-- its appointment (and the one it left). The phases of one moved appointment all fire after their
-- statement; the first recomputes the row, the others find it current and write nothing.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY[OLD.appointment_id, NEW.appointment_id], false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__update_host_time() IS
    'Trigger appointment_phases_reserve_host_time_update: keep a changed phase''s busy time current.';

-- Deleted phases: recompute their appointments (which may now be busy for their whole time).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__delete_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM old_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__delete_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_delete: deleted phases free their time.';

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__insert_host_time();

-- A row trigger: the app rewrites phases it has not changed, and the statements that change no row
-- (a simple appointment has no phases to follow its move) fire no statement trigger's queries this way.
CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_update
    AFTER UPDATE OF appointment_id, staff_required, start_time, end_time ON appointment_phases
    FOR EACH ROW
    WHEN (NEW.appointment_id IS DISTINCT FROM OLD.appointment_id
          OR ((NEW.staff_required OR OLD.staff_required)
              AND (NEW.staff_required IS DISTINCT FROM OLD.staff_required OR NEW.start_time IS DISTINCT FROM OLD.start_time
                   OR NEW.end_time IS DISTINCT FROM OLD.end_time)))
    EXECUTE FUNCTION calsync.tg_appointment_phases__update_host_time();

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__delete_host_time();

-- An appointment created with a bookable status enqueues a create; cancelling it a cancel; becoming
-- bookable again a create; a change of starts_at, staff or service while bookable a reschedule. Not for a change
-- from Cal.com (calsync.is_sync_loop: a write that marks the row sync_origin = 'calcom', or calsync's webhooks).
CREATE OR REPLACE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    IF calsync.is_sync_loop(CASE WHEN TG_OP = 'INSERT' OR NEW.sync_origin IS DISTINCT FROM OLD.sync_origin
                                 THEN NEW.sync_origin END) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NOT calsync.is_bookable_status(NEW.status) THEN
            RETURN NULL;
        END IF;
        v_type := 'create';
    ELSIF NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled' THEN
        v_type := 'cancel';
    ELSIF calsync.is_bookable_status(NEW.status) AND NOT calsync.is_bookable_status(OLD.status) THEN
        v_type := 'create';
    ELSIF calsync.is_bookable_status(NEW.status)
          AND (NEW.starts_at, NEW.staff_id, NEW.service_id) IS DISTINCT FROM (OLD.starts_at, OLD.staff_id, OLD.service_id) THEN
        v_type := 'reschedule';
    ELSE
        RETURN NULL;
    END IF;
    PERFORM calsync.enqueue_sync(NEW.id, v_type, jsonb_build_object(
        'appointment_id', NEW.id, 'status', NEW.status, 'starts_at', NEW.starts_at, 'ends_at', NEW.ends_at,
        'staff_id', NEW.staff_id, 'service_id', NEW.service_id, 'customer_id', NEW.customer_id,
        'calcom_v2_booking_uid', NEW.calcom_v2_booking_uid));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__enqueue_sync() IS
    'Trigger appointments_enqueue_sync: create, cancel and reschedule events into calsync.outbox, in the booking''s transaction.';

CREATE OR REPLACE TRIGGER appointments_enqueue_sync
    AFTER INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE OR REPLACE TRIGGER appointments_enqueue_sync_on_change
    AFTER UPDATE OF status, starts_at, staff_id, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

-- Each outbox event carries its appointment's company (calsync.outbox.company_id), so that the claim can share
-- the work out between companies (calsync.claim_sync_events) without reading the appointments. One primary-key
-- lookup per event, in the booking's transaction; an event whose appointment is gone gets none.
CREATE OR REPLACE FUNCTION calsync.tg_outbox__record_company() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.company_id IS NULL AND NEW.aggregatetype = 'appointment' THEN
        NEW.company_id := (SELECT a.company_id FROM appointments a WHERE a.id = NEW.aggregateid::bigint);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__record_company() IS
    'Trigger outbox_record_company: an event carries its appointment''s company (the claim''s fair share).';

CREATE OR REPLACE TRIGGER outbox_record_company
    BEFORE INSERT ON calsync.outbox
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_outbox__record_company();

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

-- A constraint trigger has no CREATE OR REPLACE: drop and create (in one transaction).
DROP TRIGGER IF EXISTS appointments_composite_has_phases ON appointments;
CREATE CONSTRAINT TRIGGER appointments_composite_has_phases
    AFTER INSERT OR UPDATE OF service_id, starts_at, is_composite, status ON appointments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.is_composite)
    EXECUTE FUNCTION calsync.tg_appointments__derive_phases_at_commit();

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

CREATE OR REPLACE TRIGGER appointments_phases_follow_appointment
    AFTER UPDATE OF starts_at, service_id ON appointments
    FOR EACH ROW WHEN (NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__keep_phases_in_step();
