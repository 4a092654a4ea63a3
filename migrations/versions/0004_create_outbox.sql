-- Frozen SQL of revision 0004 (never edit; sql/ holds the current definitions).

-- name: tables
CREATE TABLE calsync.outbox (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    aggregatetype  text NOT NULL,
    aggregateid    text NOT NULL,
    type           text NOT NULL,
    payload        jsonb,
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_type_known CHECK (type IN ('create', 'cancel', 'reschedule'))
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE UNIQUE INDEX outbox_seq_unique ON calsync.outbox (seq);
CREATE INDEX outbox_aggregateid_seq_index ON calsync.outbox (aggregateid, seq);
COMMENT ON TABLE calsync.outbox IS
    'Sync intents, written in the booking''s transaction; insert-only (Debezium outbox router shape). Delivered rows are deleted.';
COMMENT ON COLUMN calsync.outbox.aggregateid IS 'the appointment id';
COMMENT ON COLUMN calsync.outbox.type IS 'create, cancel or reschedule';
COMMENT ON COLUMN calsync.outbox.seq IS 'enqueue order; events of one appointment are delivered in this order';

CREATE TABLE calsync.outbox_delivery (
    outbox_id        uuid PRIMARY KEY,
    aggregateid      text NOT NULL,
    status           text NOT NULL,
    -- squawk-ignore prefer-bigint-over-int -- a small counter
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    locked_until     timestamptz,
    last_error       text,
    last_category    text,
    covers_seq       bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    CONSTRAINT outbox_delivery_status_known CHECK (status IN ('running', 'retry', 'dead')),
    CONSTRAINT outbox_delivery_running_has_lease CHECK (status <> 'running' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL))
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX outbox_delivery_lease_index ON calsync.outbox_delivery (locked_until) WHERE status = 'running';
CREATE INDEX outbox_delivery_aggregateid_index ON calsync.outbox_delivery (aggregateid);
COMMENT ON TABLE calsync.outbox_delivery IS
    'Delivery state of outbox events being worked on (made by the claim; deleted on delivery).';
COMMENT ON COLUMN calsync.outbox_delivery.status IS 'running (leased to locked_by until locked_until), retry (due at next_attempt_at) or dead';
COMMENT ON COLUMN calsync.outbox_delivery.covers_seq IS 'the appointment''s newest event when claimed: delivery coalesces every event up to it';

CREATE TABLE calsync.sync_attempts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id         uuid,
    appointment_id    bigint NOT NULL,
    phase_id          bigint,
    worker_id         text NOT NULL,
    action            text NOT NULL,
    -- squawk-ignore prefer-bigint-over-int -- a small counter
    attempt           integer,
    request_method    text NOT NULL,
    request_path      text NOT NULL,
    request_body      jsonb,
    -- squawk-ignore prefer-bigint-over-int -- an HTTP status
    response_status   integer,
    response_headers  jsonb,
    response_body     text,
    duration_ms       double precision NOT NULL,
    category          text NOT NULL,
    retryable         boolean,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now()
) WITH (toast_tuple_target = 128);
CREATE INDEX sync_attempts_appointment_id_index ON calsync.sync_attempts (appointment_id, id);
CREATE INDEX sync_attempts_created_at_brin ON calsync.sync_attempts USING brin (created_at);
COMMENT ON TABLE calsync.sync_attempts IS
    'Every HTTP attempt to Cal.com in full: request (never the API key), response status, headers and body, duration, category.';
COMMENT ON COLUMN calsync.sync_attempts.category IS 'OK, or the failure category (PAST_APPOINTMENT, HOST_UNAVAILABLE, VALIDATION, …)';
COMMENT ON COLUMN calsync.sync_attempts.response_status IS 'HTTP status; NULL when there was no response (timeout, connection reset)';

CREATE TABLE calsync.synced_bookings (
    appointment_id  bigint NOT NULL,
    slot            bigint NOT NULL,
    uid             text NOT NULL,
    booking_id      bigint,
    start_at        timestamptz,
    end_at          timestamptz,
    event_type_id   bigint,
    synced_at       timestamptz NOT NULL,
    PRIMARY KEY (appointment_id, slot)
);
COMMENT ON TABLE calsync.synced_bookings IS
    'The Cal.com bookings the worker made or adopted for each appointment (slot 0) and phase (slot = phase id).';

CREATE TABLE calsync.outbox_listeners (
    worker_id     text PRIMARY KEY,
    idle          boolean NOT NULL DEFAULT false,
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE calsync.outbox_listeners IS
    'Workers listening on channel calsync_outbox; enqueueing notifies only while one of them is idle.';

-- name: functions
-- from: sql/functions/outbox_enqueue.sql
-- from: sql/functions/outbox_delivery.sql
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
-- appointment, whose own event covers them) enqueue a reschedule of the appointment, unless it is over:
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
          AND a.ends_at > now() AND a.xmin <> pg_current_xact_id()::xid AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM new_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND a.xmin <> pg_current_xact_id()::xid AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSE
        -- only phases whose time or staff need changed (the app rewrites unchanged ones)
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT n.appointment_id FROM new_phases n JOIN old_phases o ON o.id = n.id
                       WHERE (n.start_time, n.end_time, n.staff_required) IS DISTINCT FROM (o.start_time, o.end_time, o.staff_required))
          AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND a.xmin <> pg_current_xact_id()::xid AND NOT calsync.is_sync_loop(a.sync_origin);
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

-- Delivery of the outbox: state lives in calsync.outbox_delivery (the outbox itself stays insert-only).
-- SECURITY DEFINER: the worker's role runs these functions and reads what it syncs, nothing more.
-- A delivery row is made by the claim, one per event being worked on; on success the event, every
-- earlier event of the same appointment, and their delivery rows are deleted (the attempts archive in
-- calsync.sync_attempts is the record). Each transition is one of these functions.

-- Claim up to p_limit events, at most one per appointment: an event is claimable when no earlier event of
-- its appointment is still undelivered (unless dead), and it is new or its retry is due. One statement:
-- FOR UPDATE SKIP LOCKED on the outbox rows, then INSERT … ON CONFLICT DO UPDATE … WHERE status = 'retry'
-- on the delivery row, so a racing claimer can never take an event that is running. covers_seq is the
-- appointment's newest event at claim time: the worker syncs the appointment's current state, which
-- coalesces every event up to it (create then cancel sends nothing; reschedules collapse to the last).
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH heads AS (
        SELECT o.id, o.aggregateid, o.type
        FROM calsync.outbox o
        LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
        WHERE o.aggregatetype = 'appointment'
          AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
          AND NOT EXISTS (
              SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
              WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
        ORDER BY o.seq
        LIMIT p_limit
        FOR UPDATE OF o SKIP LOCKED
    ), claimed AS (
        INSERT INTO calsync.outbox_delivery AS d
            (outbox_id, aggregateid, status, attempts, locked_by, locked_until, covers_seq, next_attempt_at)
        SELECT h.id, h.aggregateid, 'running', 1, p_worker, p_now + p_lease,
               (SELECT max(x.seq) FROM calsync.outbox x WHERE x.aggregateid = h.aggregateid), p_now
        FROM heads h
        ON CONFLICT ON CONSTRAINT outbox_delivery_pkey DO UPDATE
            SET status = 'running', attempts = d.attempts + 1, locked_by = excluded.locked_by,
                locked_until = excluded.locked_until, covers_seq = excluded.covers_seq
            WHERE d.status = 'retry'
        RETURNING d.outbox_id, d.aggregateid, d.attempts, d.covers_seq
    )
    SELECT c.outbox_id, c.aggregateid::bigint, h.type, c.attempts, c.covers_seq
    FROM claimed c JOIN heads h ON h.id = c.outbox_id
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment (one statement, SKIP LOCKED).';

-- Exponential backoff with jitter and a cap: base * 2^(attempts-1), capped, times a factor in [0.75, 1.25).
CREATE OR REPLACE FUNCTION calsync.retry_delay(p_attempts integer, p_base interval DEFAULT '5 seconds',
                                              p_cap interval DEFAULT '1 hour') RETURNS interval
LANGUAGE sql VOLATILE AS $$
    SELECT least(p_base * power(2, greatest(p_attempts - 1, 0))::double precision, p_cap) * (0.75 + random() / 2)
$$;
COMMENT ON FUNCTION calsync.retry_delay(integer, interval, interval) IS
    'Backoff before the next attempt: exponential in the attempts so far, capped, with +-25% jitter.';

-- Record a batch of outcomes in one call. p_results is a JSON array of objects:
--   outbox_id, appointment_id, outcome ('synced' | 'skipped' | 'retry' | 'dead' | 'rate_limited'), category, error,
--   detail (jsonb), retry_after_s, appointment ({calcom_booking_id, calcom_v2_booking_id,
--   calcom_v2_booking_uid}), phases ([{id, calcom_booking_id, calcom_booking_uid, calcom_sync_status,
--   sync_error_message}]), bookings ([{phase_id, uid, booking_id, start_at, end_at, event_type_id,
--   cancelled}]: what Cal.com now has), superseded ([superseded phase ids whose booking is cancelled]),
--   attempts ([rows for calsync.sync_attempts]).
-- Completion checks ownership: only events this worker still holds (running, locked_by = p_worker)
-- change; the attempts are archived either way. Returns the outbox ids whose lease was lost.
CREATE OR REPLACE FUNCTION calsync.finish_sync_events(p_worker text, p_results jsonb, p_max_attempts integer,
                                                     p_now timestamptz DEFAULT now(),
                                                     p_retry_base interval DEFAULT '5 seconds',
                                                     p_retry_cap interval DEFAULT '1 hour')
RETURNS TABLE (lost_outbox_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_owned uuid[];
    v_results jsonb;
    v_writer text := current_setting('calsync.writer', true);
BEGIN
    PERFORM set_config('calsync.writer', 'worker', true);  -- these writes must not enqueue (no loops)
    INSERT INTO calsync.sync_attempts
        (outbox_id, appointment_id, phase_id, worker_id, action, attempt, request_method, request_path,
         request_body, response_status, response_headers, response_body, duration_ms, category, retryable,
         error, created_at)
    SELECT (r->>'outbox_id')::uuid, (r->>'appointment_id')::bigint, (a->>'phase_id')::bigint, p_worker,
           a->>'action', (a->>'attempt')::int, a->>'request_method', a->>'request_path', a->'request_body',
           (a->>'response_status')::int, a->'response_headers', a->>'response_body',
           (a->>'duration_ms')::double precision, a->>'category', (a->>'retryable')::boolean, a->>'error',
           coalesce((a->>'at')::timestamptz, p_now)
    FROM jsonb_array_elements(p_results) AS r, jsonb_array_elements(coalesce(r->'attempts', '[]')) AS a;

    SELECT coalesce(array_agg(x.outbox_id), '{}') INTO v_owned
    FROM (SELECT d.outbox_id FROM calsync.outbox_delivery d
          WHERE d.outbox_id IN (SELECT (r->>'outbox_id')::uuid FROM jsonb_array_elements(p_results) AS r)
            AND d.locked_by = p_worker AND d.status = 'running'
          ORDER BY d.outbox_id FOR UPDATE) AS x;

    RETURN QUERY
        SELECT DISTINCT (r->>'outbox_id')::uuid FROM jsonb_array_elements(p_results) AS r
        WHERE NOT (r->>'outbox_id')::uuid = ANY (v_owned);

    -- the state changes take the last result of each event (all attempts are archived above)
    SELECT jsonb_agg(r ORDER BY ri) INTO v_results
    FROM (SELECT DISTINCT ON (r->>'outbox_id') r, ri FROM jsonb_array_elements(p_results) WITH ORDINALITY AS o(r, ri)
          ORDER BY r->>'outbox_id', ri DESC) AS last;

    -- what Cal.com has now, per appointment and phase (slot 0: the appointment itself). One result may name a
    -- slot more than once (found by the lookup, then moved or cancelled and booked again), and a batch may
    -- hold two results of one event (its lease ran out and it was claimed again): the last word counts.
    WITH b AS (
        SELECT DISTINCT ON (appointment_id, slot) appointment_id, slot, b
        FROM (SELECT (r->>'appointment_id')::bigint AS appointment_id,
                     coalesce((x->>'phase_id')::bigint, 0) AS slot, x AS b, ri, xi
              FROM jsonb_array_elements(p_results) WITH ORDINALITY AS o(r, ri),
                   jsonb_array_elements(coalesce(r->'bookings', '[]')) WITH ORDINALITY AS e(x, xi)
              WHERE (r->>'outbox_id')::uuid = ANY (v_owned)) AS said
        ORDER BY appointment_id, slot, ri DESC, xi DESC
    ),
    gone AS (
        DELETE FROM calsync.synced_bookings s USING b
        WHERE coalesce((b.b->>'cancelled')::boolean, false) AND s.appointment_id = b.appointment_id
          AND s.slot = b.slot
    )
    INSERT INTO calsync.synced_bookings AS s (appointment_id, slot, uid, booking_id, start_at, end_at, event_type_id, synced_at)
    SELECT b.appointment_id, b.slot, b.b->>'uid', (b.b->>'booking_id')::bigint,
           (b.b->>'start_at')::timestamptz, (b.b->>'end_at')::timestamptz, (b.b->>'event_type_id')::bigint, p_now
    FROM b WHERE NOT coalesce((b.b->>'cancelled')::boolean, false)
    ON CONFLICT (appointment_id, slot) DO UPDATE
        SET uid = excluded.uid, booking_id = excluded.booking_id, start_at = excluded.start_at,
            end_at = excluded.end_at, event_type_id = excluded.event_type_id, synced_at = excluded.synced_at;

    UPDATE calsync.superseded_phases sp SET calcom_cancelled_at = p_now
    FROM jsonb_array_elements(p_results) AS r, jsonb_array_elements_text(coalesce(r->'superseded', '[]')) AS x(id)
    WHERE (r->>'outbox_id')::uuid = ANY (v_owned) AND sp.id = x.id::bigint;

    UPDATE appointment_phases p
    SET calcom_booking_id = CASE WHEN f ? 'calcom_booking_id' THEN (f->>'calcom_booking_id')::bigint ELSE p.calcom_booking_id END,
        calcom_booking_uid = CASE WHEN f ? 'calcom_booking_uid' THEN f->>'calcom_booking_uid' ELSE p.calcom_booking_uid END,
        calcom_sync_status = coalesce(f->>'calcom_sync_status', p.calcom_sync_status),
        sync_error_message = CASE WHEN f ? 'sync_error_message' THEN f->>'sync_error_message' ELSE p.sync_error_message END,
        updated_at = p_now
    FROM (SELECT DISTINCT ON ((f->>'id')::bigint) f, (r->>'appointment_id')::bigint AS appointment_id  -- the last word
          FROM jsonb_array_elements(v_results) WITH ORDINALITY AS o(r, ri),
               jsonb_array_elements(coalesce(r->'phases', '[]')) WITH ORDINALITY AS e(f, fi)
          WHERE (r->>'outbox_id')::uuid = ANY (v_owned)
          ORDER BY (f->>'id')::bigint, ri DESC, fi DESC) AS said
    WHERE p.id = (f->>'id')::bigint AND p.appointment_id = said.appointment_id;

    UPDATE appointments a
    SET calcom_booking_id = CASE WHEN v ? 'calcom_booking_id' THEN (v->>'calcom_booking_id')::bigint ELSE a.calcom_booking_id END,
        calcom_v2_booking_id = CASE WHEN v ? 'calcom_v2_booking_id' THEN v->>'calcom_v2_booking_id' ELSE a.calcom_v2_booking_id END,
        calcom_v2_booking_uid = CASE WHEN v ? 'calcom_v2_booking_uid' THEN v->>'calcom_v2_booking_uid' ELSE a.calcom_v2_booking_uid END,
        calcom_sync_status = CASE WHEN outcome = 'synced' THEN 'synced' WHEN final THEN 'failed'
                                  WHEN a.calcom_sync_status = 'synced' THEN 'pending' ELSE a.calcom_sync_status END,
        sync_error_message = CASE WHEN outcome = 'synced' THEN NULL ELSE r->>'error' END,
        sync_error_code = CASE WHEN outcome = 'synced' THEN NULL ELSE r->>'category' END,
        sync_error_detail = CASE WHEN outcome = 'synced' THEN NULL ELSE r->'detail' END,
        sync_attempt_count = least(a.sync_attempt_count + jsonb_array_length(coalesce(r->'attempts', '[]')), 32767),
        last_sync_attempt_at = p_now,
        requires_manual_review = CASE WHEN final THEN true WHEN outcome = 'synced' THEN false ELSE a.requires_manual_review END,
        manual_review_flagged_at = CASE WHEN final THEN coalesce(a.manual_review_flagged_at, p_now)
                                        WHEN outcome = 'synced' THEN NULL ELSE a.manual_review_flagged_at END
    FROM (SELECT r, r->>'outcome' AS outcome, coalesce(r->'appointment', '{}'::jsonb) AS v,
                 r->>'outcome' = 'dead' OR (r->>'outcome' = 'retry' AND d.attempts >= p_max_attempts) AS final
          FROM jsonb_array_elements(v_results) AS r
          JOIN calsync.outbox_delivery d ON d.outbox_id = (r->>'outbox_id')::uuid
          WHERE d.outbox_id = ANY (v_owned)) AS x
    WHERE a.id = (r->>'appointment_id')::bigint AND outcome <> 'skipped';

    -- delivered (or nothing to deliver: skipped): the event and every earlier event of the appointment it covered
    WITH done AS (
        SELECT d.aggregateid, d.covers_seq FROM calsync.outbox_delivery d
        JOIN jsonb_array_elements(v_results) AS r ON (r->>'outbox_id')::uuid = d.outbox_id
        WHERE d.outbox_id = ANY (v_owned) AND r->>'outcome' IN ('synced', 'skipped')
    ), events AS (
        DELETE FROM calsync.outbox e USING done
        WHERE e.aggregateid = done.aggregateid AND e.seq <= done.covers_seq
        RETURNING e.id
    )
    DELETE FROM calsync.outbox_delivery d USING events WHERE d.outbox_id = events.id;

    -- retry later (a rate-limited try does not count as an attempt), or dead after p_max_attempts
    UPDATE calsync.outbox_delivery d
    SET status = CASE WHEN r->>'outcome' = 'dead' OR (r->>'outcome' = 'retry' AND d.attempts >= p_max_attempts)
                      THEN 'dead' ELSE 'retry' END,
        attempts = d.attempts - CASE WHEN r->>'outcome' = 'rate_limited' THEN 1 ELSE 0 END,
        next_attempt_at = p_now + CASE WHEN r->>'outcome' = 'rate_limited'
                                       THEN coalesce((r->>'retry_after_s')::double precision, 60) * interval '1 second'
                                       -- an attempt that got somewhere (some bookings made) retries soon
                                       WHEN jsonb_array_length(coalesce(r->'bookings', '[]')) > 0 THEN p_retry_base
                                       ELSE calsync.retry_delay(d.attempts, p_retry_base, p_retry_cap) END,
        locked_by = NULL, locked_until = NULL,
        last_error = r->>'error', last_category = r->>'category',
        processed_at = CASE WHEN r->>'outcome' = 'dead' OR (r->>'outcome' = 'retry' AND d.attempts >= p_max_attempts)
                            THEN p_now END
    FROM jsonb_array_elements(v_results) AS r
    WHERE d.outbox_id = (r->>'outbox_id')::uuid AND d.outbox_id = ANY (v_owned)
      AND r->>'outcome' IN ('retry', 'dead', 'rate_limited');
    PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
END
$$;
COMMENT ON FUNCTION calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval) IS
    'Record a batch of sync outcomes: archive attempts, update appointments/phases, delete delivered events, schedule retries or mark dead. Returns events whose lease was lost.';

-- Leases go back to be retried now when they expired, or when the worker holding them stopped
-- heart-beating in calsync.outbox_listeners (it died): the next try looks the booking up at Cal.com
-- before creating, so nothing is booked twice.
CREATE OR REPLACE FUNCTION calsync.reap_expired_leases(p_now timestamptz DEFAULT now(),
                                                      p_dead_after interval DEFAULT '60 seconds') RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH reaped AS (
        UPDATE calsync.outbox_delivery d
        SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
            last_error = 'lease taken back: the worker holding it stopped or stalled', last_category = 'NETWORK'
        WHERE d.status = 'running'
          AND (d.locked_until < p_now
               OR NOT EXISTS (SELECT 1 FROM calsync.outbox_listeners l
                              WHERE l.worker_id = d.locked_by AND l.heartbeat_at > p_now - p_dead_after))
        RETURNING 1
    )
    SELECT count(*)::int FROM reaped
$$;
COMMENT ON FUNCTION calsync.reap_expired_leases(timestamptz, interval) IS
    'Return events whose lease expired, or whose worker stopped heart-beating, to the queue, due now; returns how many.';

-- A live worker keeps the leases of the events it is still working on (a slow Cal.com must not make a
-- healthy worker lose them); a dead one stops renewing and its leases run out.
CREATE OR REPLACE FUNCTION calsync.renew_leases(p_worker text, p_outbox_ids uuid[], p_lease interval,
                                               p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH renewed AS (
        UPDATE calsync.outbox_delivery SET locked_until = p_now + p_lease
        WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids)
        RETURNING 1
    )
    SELECT count(*)::int FROM renewed
$$;
COMMENT ON FUNCTION calsync.renew_leases(text, uuid[], interval, timestamptz) IS
    'Extend the leases a worker still holds on events it is working on; returns how many it still holds.';

-- Shutdown: give back the events this worker holds and could not finish; they are due again at once.
-- The attempt still counts, so the next try looks the booking up before creating it.
CREATE OR REPLACE FUNCTION calsync.release_sync_events(p_worker text, p_outbox_ids uuid[],
                                                      p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH released AS (
        UPDATE calsync.outbox_delivery
        SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
            last_error = 'released by a stopping worker'
        WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids)
        RETURNING 1
    )
    SELECT count(*)::int FROM released
$$;
COMMENT ON FUNCTION calsync.release_sync_events(text, uuid[], timestamptz) IS
    'Give back events a stopping worker holds; they are due again at once.';

-- A claim whose reply never arrived (the connection died after the commit) leaves leases that a live worker
-- holds without knowing: the reaper would not touch them (the worker heartbeats) until the lease ran out.
-- The worker names what it does hold; everything else it holds is given back, due at once.
CREATE OR REPLACE FUNCTION calsync.release_unknown_leases(p_worker text, p_held uuid[],
                                                         p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH released AS (
        UPDATE calsync.outbox_delivery
        SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
            last_error = 'released: the worker lost the reply to its claim'
        WHERE status = 'running' AND locked_by = p_worker AND NOT (outbox_id = ANY (p_held))
        RETURNING 1
    )
    SELECT count(*)::int FROM released
$$;
COMMENT ON FUNCTION calsync.release_unknown_leases(text, uuid[], timestamptz) IS
    'Give back the leases a worker holds but does not know of (a claim whose reply was lost); due at once.';

-- Retention: delivered events are deleted on delivery; dead ones stay for review until they are older
-- than p_keep; attempts are kept p_keep_attempts. Deletes in batches to keep each transaction short.
CREATE OR REPLACE FUNCTION calsync.prune_sync_history(p_keep interval DEFAULT '30 days',
                                                     p_keep_attempts interval DEFAULT '90 days',
                                                     p_batch integer DEFAULT 5000,
                                                     p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_total integer := 0;
    v_n integer;
BEGIN
    WITH old AS (
        SELECT outbox_id FROM calsync.outbox_delivery
        WHERE status = 'dead' AND processed_at < p_now - p_keep LIMIT p_batch
    ), gone AS (
        DELETE FROM calsync.outbox_delivery d USING old WHERE d.outbox_id = old.outbox_id RETURNING d.outbox_id
    )
    DELETE FROM calsync.outbox o USING gone WHERE o.id = gone.outbox_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_total := v_total + v_n;
    DELETE FROM calsync.sync_attempts
    WHERE id IN (SELECT id FROM calsync.sync_attempts WHERE created_at < p_now - p_keep_attempts LIMIT p_batch);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_total + v_n;
END
$$;
COMMENT ON FUNCTION calsync.prune_sync_history(interval, interval, integer, timestamptz) IS
    'Delete dead events older than p_keep and sync attempts older than p_keep_attempts, one batch; returns rows deleted.';

-- name: trigger_appointments
-- from: sql/triggers/appointments__enqueue_sync.sql
CREATE OR REPLACE TRIGGER appointments_enqueue_sync
    AFTER INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE OR REPLACE TRIGGER appointments_enqueue_sync_on_change
    AFTER UPDATE OF status, starts_at, staff_id, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

-- name: trigger_phases
-- from: sql/triggers/appointment_phases__enqueue_sync.sql
CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_update
    AFTER UPDATE ON appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

-- name: trigger_outbox
-- from: sql/triggers/outbox__wake_worker.sql
CREATE OR REPLACE TRIGGER outbox_wake_worker
    AFTER INSERT ON calsync.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_outbox__wake_worker();

-- name: adopt_backlog
-- The outbox takes over from the app's sync job: live upcoming appointments the job had not pushed yet
-- (calcom_sync_status pending) get a create event, so none of them waits forever. Stop the app's job first.
INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload)
SELECT 'appointment', a.id::text, 'create', jsonb_build_object('appointment_id', a.id, 'adopted_from', 'pending backlog')
FROM appointments a
WHERE a.calcom_sync_status = 'pending' AND calsync.is_bookable_status(a.status) AND a.ends_at > now()
  AND NOT EXISTS (SELECT 1 FROM calsync.outbox o WHERE o.aggregateid = a.id::text)
ORDER BY a.id;

-- name: drop_triggers
DROP TRIGGER appointments_enqueue_sync ON appointments;
DROP TRIGGER appointments_enqueue_sync_on_change ON appointments;
DROP TRIGGER appointment_phases_enqueue_sync_insert ON appointment_phases;
DROP TRIGGER appointment_phases_enqueue_sync_update ON appointment_phases;
DROP TRIGGER appointment_phases_enqueue_sync_delete ON appointment_phases;

-- name: drop
DROP TABLE calsync.outbox_listeners, calsync.synced_bookings, calsync.sync_attempts, calsync.outbox_delivery,
           calsync.outbox;
DROP FUNCTION calsync.prune_sync_history(interval, interval, integer, timestamptz);
DROP FUNCTION calsync.release_unknown_leases(text, uuid[], timestamptz);
DROP FUNCTION calsync.release_sync_events(text, uuid[], timestamptz);
DROP FUNCTION calsync.renew_leases(text, uuid[], interval, timestamptz);
DROP FUNCTION calsync.reap_expired_leases(timestamptz, interval);
DROP FUNCTION calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval);
DROP FUNCTION calsync.retry_delay(integer, interval, interval);
DROP FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz);
DROP FUNCTION calsync.tg_outbox__wake_worker();
DROP FUNCTION calsync.tg_appointment_phases__enqueue_sync();
DROP FUNCTION calsync.tg_appointments__enqueue_sync();
DROP FUNCTION calsync.enqueue_sync(bigint, text, jsonb);
DROP FUNCTION calsync.is_sync_loop(text);
DROP FUNCTION calsync.is_bookable_status(text);
