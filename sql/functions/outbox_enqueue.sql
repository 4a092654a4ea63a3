-- The transactional outbox: the intent to sync commits in the same transaction as the booking.
-- Appointment changes insert rows into calsync.outbox (insert-only, shaped for Debezium's outbox event
-- router); the worker delivers them (calsync.claim_sync_events / calsync.finish_sync_events).

-- Statuses the app books with; only these are synced to Cal.com (in_progress/completed already happened).
CREATE OR REPLACE FUNCTION calsync.is_bookable_status(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_status IN ('pending', 'confirmed', 'scheduled', 'booked')
$$;
COMMENT ON FUNCTION calsync.is_bookable_status(text) IS
    'true for the statuses an appointment is synced to Cal.com in: pending, confirmed, scheduled, booked.';

-- Changes the worker writes itself (calsync.writer = 'worker') and changes that came from Cal.com
-- (sync_origin = 'calcom') never enqueue: no loops. Nor do a revision's backfills (calsync.writer =
-- 'backfill'): completing old rows must not rebook them at Cal.com, which would e-mail every customer.
CREATE OR REPLACE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;
COMMENT ON FUNCTION calsync.is_sync_loop(text) IS
    'true when a change must not be synced back: written by the worker, or originating from Cal.com.';

-- PL/pgSQL, not SQL: a SQL function that can't be inlined (an INSERT) is planned again on every call from
-- a trigger; PL/pgSQL keeps the plan for the session (the app's every booking calls this).
CREATE OR REPLACE FUNCTION calsync.enqueue_sync(p_appointment_id bigint, p_type text, p_payload jsonb)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload)
    VALUES ('appointment', p_appointment_id::text, p_type, p_payload)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.enqueue_sync(bigint, text, jsonb) IS
    'Add one event (create, cancel or reschedule) for an appointment to calsync.outbox; returns its id.';

-- An appointment created with a bookable status enqueues a create; cancelling it a cancel; becoming
-- bookable again a create; a change of starts_at, staff or service while bookable a reschedule.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    IF calsync.is_sync_loop(NEW.sync_origin) THEN
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

-- Phases follow their appointment: phases changed on their own (not in a transaction that also wrote the
-- appointment, whose own event covers them; under a savepoint too: calsync.written_by_this_transaction)
-- enqueue a reschedule of the appointment, unless it is over:
-- Cal.com refuses bookings in the past, and history is not rebooked (revision 0011 derives the phases of
-- old composite appointments too).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM old_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM new_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSE
        -- only phases whose time or staff need changed (the app rewrites unchanged ones)
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT n.appointment_id FROM new_phases n JOIN old_phases o ON o.id = n.id
                       WHERE (n.start_time, n.end_time, n.staff_required) IS DISTINCT FROM (o.start_time, o.end_time, o.staff_required))
          AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__enqueue_sync() IS
    'Statement triggers appointment_phases_enqueue_sync_*: phases changed on their own reschedule their appointment.';

-- NOTIFY takes a lock at commit that serialises every notifying writer, so enqueueing notifies at most
-- once per statement, and only while a worker says it is idle (calsync.outbox_listeners).
CREATE OR REPLACE FUNCTION calsync.tg_outbox__wake_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM calsync.outbox_listeners WHERE idle) THEN
        PERFORM pg_notify('calsync_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__wake_worker() IS
    'Statement trigger outbox_wake_worker: NOTIFY calsync_outbox, once per statement and only when a worker is idle.';
