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

-- name: webhook_functions
-- from: sql/functions/retry_parked_webhooks.sql
-- from: sql/functions/receive_webhook.sql
-- Try parked deliveries again: those due (next_attempt_at <= p_now), or, with p_waiting_for, those waiting for
-- that booking uid (whatever their time). Oldest first by Cal.com's createdAt, so a chain applies in order; rows
-- another session is applying are skipped. Returns how many left the parked state. The receiver calls it on a
-- timer (CALSYNC_WEBHOOK_RETRY_S); calsync.apply_webhook calls it for the booking a delivery settled.
CREATE OR REPLACE FUNCTION calsync.retry_parked_webhooks(p_now timestamptz DEFAULT now(), p_waiting_for text DEFAULT NULL,
                                                        p_limit integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_ids bigint[];
    v_outcome text;
    v_settled integer := 0;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.retry_parked_webhooks: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    -- two queries, not one with a CASE: each is planned on its own partial index (parked_due, parked_waiting);
    -- the CASE's generic plan could use neither and read every parked row on each call
    IF p_waiting_for IS NULL THEN
        v_ids := ARRAY(SELECT d.id FROM calsync.webhook_deliveries d
                       WHERE d.outcome = 'parked' AND d.next_attempt_at <= p_now
                       ORDER BY (d.event).created_at NULLS LAST, d.id
                       LIMIT p_limit
                       FOR UPDATE SKIP LOCKED);
    ELSE
        v_ids := ARRAY(SELECT d.id FROM calsync.webhook_deliveries d
                       WHERE d.outcome = 'parked' AND d.waiting_for = p_waiting_for
                       ORDER BY (d.event).created_at NULLS LAST, d.id
                       LIMIT p_limit
                       FOR UPDATE SKIP LOCKED);
    END IF;
    FOREACH v_id IN ARRAY v_ids
    LOOP
        SELECT r.outcome INTO v_outcome FROM calsync.apply_webhook(v_id, p_now) r;
        IF v_outcome <> 'parked' THEN
            v_settled := v_settled + 1;
        END IF;
    END LOOP;
    RETURN v_settled;
END
$$;
COMMENT ON FUNCTION calsync.retry_parked_webhooks(timestamptz, text, integer) IS
    'Apply parked Cal.com deliveries again (due ones, or those waiting for one booking uid); returns how many settled.';

-- One authentic Cal.com delivery, stored and applied in one call (the receiver's one statement per delivery).
-- p_event is calsync.webhook_event as JSON (worker/webhooks/contract.py WebhookEvent); p_body the raw body and
-- p_headers the headers without secrets (the receiver strips them). Exactly once: deliveries of one event
-- (event_key: trigger and booking uid, else the body's SHA-256; see worker/webhooks/contract.py) take turns (a
-- transaction lock on the key); the first is decided (calsync.decide_webhook) and stored once with its outcome; a
-- redelivery is kept as its own row, outcome duplicate, pointing at the first, and changes nothing. Then the
-- deliveries parked waiting for its booking are tried. Returns the delivery's id, outcome, detail and appointment.
CREATE OR REPLACE FUNCTION calsync.receive_webhook(p_event jsonb, p_body text, p_headers jsonb, p_signature text,
                                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (delivery_id bigint, outcome text, detail text, appointment_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_e calsync.webhook_event := jsonb_populate_record(NULL::calsync.webhook_event, p_event);
    v_id bigint;
    v_first calsync.webhook_deliveries;
    v_outcome text;
    v_detail text;
    v_appointment bigint;
    v_waiting text;
    v_next timestamptz;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.receive_webhook: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('calsync.webhook:' || v_e.event_key, 0));
    SELECT * INTO v_first FROM calsync.webhook_deliveries d WHERE d.event_key = v_e.event_key AND d.duplicate_of IS NULL;
    v_id := nextval(pg_get_serial_sequence('calsync.webhook_deliveries', 'id'));
    IF v_first.id IS NOT NULL THEN
        v_outcome := 'duplicate';
        v_detail := format('a redelivery of delivery %s (%s): nothing changed', v_first.id, v_first.outcome);
        v_appointment := v_first.appointment_id;
    ELSE
        SELECT r.outcome, r.detail, r.appointment_id, r.waiting_for, r.next_attempt_at
        INTO v_outcome, v_detail, v_appointment, v_waiting, v_next
        FROM calsync.decide_webhook(v_id, v_e, p_now, 1, p_now) r;
    END IF;
    INSERT INTO calsync.webhook_deliveries AS d
        (id, received_at, company_id, event_key, trigger_event, booking_uid, event, body, body_size, headers,
         signature, outcome, detail, appointment_id, duplicate_of, waiting_for, next_attempt_at, decided_at)
    OVERRIDING SYSTEM VALUE
    VALUES (v_id, p_now, v_e.company_id, v_e.event_key, v_e.trigger_event, v_e.uid, v_e, p_body, octet_length(p_body),
            p_headers, p_signature, v_outcome, v_detail, v_appointment, v_first.id, v_waiting, v_next,
            CASE WHEN v_outcome <> 'parked' THEN p_now END);
    IF v_first.id IS NULL AND v_outcome <> 'parked' AND v_e.uid IS NOT NULL
       -- one index probe; the call only when something waits for this booking
       AND EXISTS (SELECT 1 FROM calsync.webhook_deliveries w WHERE w.outcome = 'parked' AND w.waiting_for = v_e.uid) THEN
        PERFORM calsync.retry_parked_webhooks(p_now, v_e.uid);
    END IF;
    RETURN QUERY SELECT v_id, v_outcome, v_detail, v_appointment;
END
$$;
COMMENT ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz) IS
    'Store one authentic Cal.com webhook delivery and apply it, exactly once per event (a redelivery is kept as a duplicate and changes nothing).';

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

-- name: previous_webhook_functions
-- revision 0021's definitions
-- Try parked deliveries again: those due (next_attempt_at <= p_now), or, with p_waiting_for, those waiting for
-- that booking uid (whatever their time). Oldest first by Cal.com's createdAt, so a chain applies in order; rows
-- another session is applying are skipped. Returns how many left the parked state. The receiver calls it on a
-- timer (CALSYNC_WEBHOOK_RETRY_S); calsync.apply_webhook calls it for the booking a delivery settled.
CREATE OR REPLACE FUNCTION calsync.retry_parked_webhooks(p_now timestamptz DEFAULT now(), p_waiting_for text DEFAULT NULL,
                                                        p_limit integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_outcome text;
    v_settled integer := 0;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.retry_parked_webhooks: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    FOR v_id IN
        SELECT d.id FROM calsync.webhook_deliveries d
        WHERE d.outcome = 'parked'
          AND CASE WHEN p_waiting_for IS NULL THEN d.next_attempt_at <= p_now ELSE d.waiting_for = p_waiting_for END
        ORDER BY (d.event).created_at NULLS LAST, d.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        SELECT r.outcome INTO v_outcome FROM calsync.apply_webhook(v_id, p_now) r;
        IF v_outcome <> 'parked' THEN
            v_settled := v_settled + 1;
        END IF;
    END LOOP;
    RETURN v_settled;
END
$$;
COMMENT ON FUNCTION calsync.retry_parked_webhooks(timestamptz, text, integer) IS
    'Apply parked Cal.com deliveries again (due ones, or those waiting for one booking uid); returns how many settled.';

-- One authentic Cal.com delivery, stored and applied in one call (the receiver's one statement per delivery).
-- p_event is calsync.webhook_event as JSON (worker/webhooks/contract.py WebhookEvent); p_body the raw body and
-- p_headers the headers without secrets (the receiver strips them). Exactly once: deliveries of one event
-- (event_key: trigger and booking uid, else the body's SHA-256; see worker/webhooks/contract.py) take turns (a
-- transaction lock on the key); the first is decided (calsync.decide_webhook) and stored once with its outcome; a
-- redelivery is kept as its own row, outcome duplicate, pointing at the first, and changes nothing. Then the
-- deliveries parked waiting for its booking are tried. Returns the delivery's id, outcome, detail and appointment.
CREATE OR REPLACE FUNCTION calsync.receive_webhook(p_event jsonb, p_body text, p_headers jsonb, p_signature text,
                                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (delivery_id bigint, outcome text, detail text, appointment_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_e calsync.webhook_event := jsonb_populate_record(NULL::calsync.webhook_event, p_event);
    v_id bigint;
    v_first calsync.webhook_deliveries;
    v_outcome text;
    v_detail text;
    v_appointment bigint;
    v_waiting text;
    v_next timestamptz;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.receive_webhook: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('calsync.webhook:' || v_e.event_key, 0));
    SELECT * INTO v_first FROM calsync.webhook_deliveries d WHERE d.event_key = v_e.event_key AND d.duplicate_of IS NULL;
    v_id := nextval(pg_get_serial_sequence('calsync.webhook_deliveries', 'id'));
    IF v_first.id IS NOT NULL THEN
        v_outcome := 'duplicate';
        v_detail := format('a redelivery of delivery %s (%s): nothing changed', v_first.id, v_first.outcome);
        v_appointment := v_first.appointment_id;
    ELSE
        SELECT r.outcome, r.detail, r.appointment_id, r.waiting_for, r.next_attempt_at
        INTO v_outcome, v_detail, v_appointment, v_waiting, v_next
        FROM calsync.decide_webhook(v_id, v_e, p_now, 1, p_now) r;
    END IF;
    INSERT INTO calsync.webhook_deliveries AS d
        (id, received_at, company_id, event_key, trigger_event, booking_uid, event, body, body_size, headers,
         signature, outcome, detail, appointment_id, duplicate_of, waiting_for, next_attempt_at, decided_at)
    OVERRIDING SYSTEM VALUE
    VALUES (v_id, p_now, v_e.company_id, v_e.event_key, v_e.trigger_event, v_e.uid, v_e, p_body, octet_length(p_body),
            p_headers, p_signature, v_outcome, v_detail, v_appointment, v_first.id, v_waiting, v_next,
            CASE WHEN v_outcome <> 'parked' THEN p_now END);
    IF v_first.id IS NULL AND v_outcome <> 'parked' AND v_e.uid IS NOT NULL THEN
        PERFORM calsync.retry_parked_webhooks(p_now, v_e.uid);
    END IF;
    RETURN QUERY SELECT v_id, v_outcome, v_detail, v_appointment;
END
$$;
COMMENT ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz) IS
    'Store one authentic Cal.com webhook delivery and apply it, exactly once per event (a redelivery is kept as a duplicate and changes nothing).';
