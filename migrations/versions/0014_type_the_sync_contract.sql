-- Frozen SQL of revision 0014 (never edit; sql/ holds the current definitions).

-- name: types
-- from: sql/types/sync_contract.sql
-- The typed contract between the worker and the database (worker/sync/contract.py has the Python twin of each
-- type, field for field; tests/test_contract.py compares them). Composite types cannot be replaced: this file is
-- the current shape for review, created by revision 0014; a change is a new revision (ALTER TYPE … ADD ATTRIBUTE)
-- and an edit here and in contract.py. tests/test_contract.py also checks this file against the database.

-- read: calsync.appointment_sync_state(ids)
CREATE TYPE calsync.sync_customer AS (
    id bigint, name text, email text, phone text, email_is_placeholder boolean, usable_email boolean,
    usable_phone boolean);
CREATE TYPE calsync.sync_service AS (id bigint, name text, event_type_id bigint);
CREATE TYPE calsync.sync_phase AS (
    id bigint, sequence_order bigint, segment_key text, segment_name text, staff_required boolean,
    start_time timestamptz, end_time timestamptz, calcom_booking_uid text, calcom_booking_id bigint,
    calcom_sync_status text);
CREATE TYPE calsync.sync_segment_event_type AS (segment_key text, event_type_id bigint);
CREATE TYPE calsync.sync_known_booking AS (
    slot bigint, uid text, booking_id bigint, start_at timestamptz, end_at timestamptz, event_type_id bigint);
CREATE TYPE calsync.sync_superseded_booking AS (id bigint, phase_id bigint, uid text);
CREATE TYPE calsync.appointment_sync_state AS (
    id bigint, deleted boolean, status text, starts_at timestamptz, ends_at timestamptz, is_composite boolean,
    booking_timezone text, staff_id uuid, calcom_v2_booking_uid text, calcom_sync_status text,
    event_times timestamptz[], host_conflict bigint, customer calsync.sync_customer, service calsync.sync_service,
    phases calsync.sync_phase[], event_map calsync.sync_segment_event_type[], synced calsync.sync_known_booking[],
    superseded calsync.sync_superseded_booking[], composite_problem text, composite_flagged boolean);

-- report: calsync.finish_sync_events(worker, results, …)
CREATE TYPE calsync.sync_booking_fact AS (
    phase_id bigint, uid text, booking_id bigint, start_at timestamptz, end_at timestamptz, event_type_id bigint,
    cancelled boolean);
CREATE TYPE calsync.sync_exchange AS (
    phase_id bigint, action text, request_method text, request_path text, request_body jsonb,
    response_status bigint, response_headers jsonb, response_body text, response_size bigint,
    response_truncated boolean, duration_ms double precision, category text, error text, at timestamptz);
CREATE TYPE calsync.sync_failure_detail AS (
    message text, field text, http_status bigint, action text, phase_id bigint, request_id text);
CREATE TYPE calsync.sync_result AS (
    event_id uuid, appointment_id bigint, category text, skipped boolean, error text,
    detail calsync.sync_failure_detail, retry_after_s double precision, bookings calsync.sync_booking_fact[],
    superseded bigint[], exchanges calsync.sync_exchange[]);

-- internal to calsync.finish_sync_events: each event's last result, decided
CREATE TYPE calsync.sync_decision AS (
    event_id uuid, appointment_id bigint, outcome text, category text, error text, message text, detail jsonb,
    retry_after_s double precision, made_progress boolean, exchanges integer);

-- name: columns
ALTER TABLE calsync.sync_attempts
    ADD COLUMN response_size bigint,
    ADD COLUMN response_truncated boolean;
COMMENT ON COLUMN calsync.sync_attempts.response_size IS 'bytes Cal.com sent (or declared) before any cap; NULL before revision 0014';
COMMENT ON COLUMN calsync.sync_attempts.response_truncated IS 'true when response_body holds only the first part of what Cal.com sent';

-- name: categories
INSERT INTO remediation.categories VALUES
 ('MALFORMED_RESPONSE', 'worker', true, true, 'Cal.com answered 2xx without a usable booking (no uid, wrong types, an array, status error, not JSON)',
  'Nothing to do when it passes; if it persists, check the base URL and any proxy in front of Cal.com', 'requeue', 125),
 ('REDIRECTED', 'worker', true, true, 'Cal.com (or a proxy) answered with a redirect, which the worker never follows with the key',
  'Set CALCOM_BASE_URL to the address the redirect names (recorded as Location), if it is Cal.com''s', 'requeue', 126)
ON CONFLICT (category) DO NOTHING;

-- name: functions
-- from: sql/functions/sync_outcome.sql
-- from: sql/functions/appointment_sync_state.sql
-- The one place an attempt's outcome is decided, from its category and the event's attempts so far:
-- skipped (nothing to do), synced (category OK), rate_limited (does not count as an attempt), retry (the
-- category is retryable in remediation.categories and attempts remain), else dead.
CREATE OR REPLACE FUNCTION calsync.sync_outcome(p_category text, p_skipped boolean, p_attempts integer,
                                               p_max_attempts integer) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN p_skipped THEN 'skipped'
        WHEN p_category = 'OK' THEN 'synced'
        WHEN p_category = 'RATE_LIMITED' THEN 'rate_limited'
        WHEN coalesce((SELECT k.retryable FROM remediation.categories k WHERE k.category = p_category), false)
             AND p_attempts < p_max_attempts THEN 'retry'
        ELSE 'dead' END
$$;
COMMENT ON FUNCTION calsync.sync_outcome(text, boolean, integer, integer) IS
    'An attempt''s outcome (skipped, synced, rate_limited, retry, dead) from its category and the attempts so far.';

-- What the worker reads to sync appointments: one calsync.appointment_sync_state per id (the Python twin is
-- worker/sync/contract.py SyncState). An id whose appointment no longer exists comes back deleted, with what
-- Cal.com still has for it. Read with the caller's rights (the worker role may read these tables).
CREATE OR REPLACE FUNCTION calsync.appointment_sync_state(p_ids bigint[])
RETURNS SETOF calsync.appointment_sync_state
LANGUAGE sql STABLE AS $$
    SELECT ROW(
        x.id, a.id IS NULL, CASE WHEN a.id IS NULL THEN 'cancelled' ELSE a.status END, a.starts_at, a.ends_at,
        coalesce(a.is_composite, false), a.booking_timezone, a.staff_id, a.calcom_v2_booking_uid,
        a.calcom_sync_status,
        -- the times the appointment had in its undelivered events (where an earlier attempt may have booked it)
        coalesce((SELECT array_agg(DISTINCT (o.payload->>'starts_at')::timestamptz) FROM calsync.outbox o
                  WHERE a.id IS NOT NULL AND o.aggregateid = a.id::text AND o.payload ? 'starts_at'), '{}'),
        -- a host conflict listed as a known issue (grandfathered by the rules' pre-flight, or flagged by the
        -- runbook) that still exists: not synced until the business reschedules one of the bookings
        CASE WHEN EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'host_busy_time_no_overlap' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL)
            THEN (SELECT h.other_id FROM remediation.host_conflicts_of(a.id) AS h LIMIT 1) END,
        CASE WHEN c.id IS NOT NULL THEN ROW(
            c.id, c.name, c.email, c.phone, coalesce(c.email_is_placeholder, false), calsync.is_usable_email(c.email),
            calsync.is_usable_phone(c.phone))::calsync.sync_customer END,
        CASE WHEN s.id IS NOT NULL THEN ROW(s.id, s.name, s.calcom_event_type_id)::calsync.sync_service END,
        coalesce((
            SELECT array_agg(ROW(p.id, p.sequence_order, p.segment_key, p.segment_name, p.staff_required,
                                 p.start_time, p.end_time, p.calcom_booking_uid, p.calcom_booking_id,
                                 p.calcom_sync_status)::calsync.sync_phase ORDER BY p.sequence_order, p.id)
            FROM appointment_phases p WHERE p.appointment_id = a.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(m.segment_key, coalesce(m.child_event_type_id, m.event_type_id))
                             ::calsync.sync_segment_event_type ORDER BY m.segment_key)
            FROM calcom_event_map m
            WHERE m.service_id = a.service_id AND m.staff_id = a.staff_id
              AND coalesce(m.child_event_type_id, m.event_type_id) IS NOT NULL), '{}'),
        coalesce((
            SELECT array_agg(ROW(b.slot, b.uid, b.booking_id, b.start_at, b.end_at, b.event_type_id)
                             ::calsync.sync_known_booking ORDER BY b.slot)
            FROM calsync.synced_bookings b WHERE b.appointment_id = x.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(sp.id, sp.phase_id, sp.calcom_booking_uid)::calsync.sync_superseded_booking
                             ORDER BY sp.id)
            FROM calsync.superseded_phases sp
            WHERE sp.appointment_id = a.id AND sp.calcom_booking_uid IS NOT NULL AND sp.calcom_cancelled_at IS NULL),
            '{}'),
        (SELECT i.detail FROM calsync.integrity_issues i
         WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
           AND i.resolved_at IS NULL LIMIT 1),
        EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL)
    )::calsync.appointment_sync_state
    FROM unnest(p_ids) AS x(id)
    LEFT JOIN appointments a ON a.id = x.id
    LEFT JOIN customers c ON c.id = a.customer_id
    LEFT JOIN services s ON s.id = a.service_id
$$;
COMMENT ON FUNCTION calsync.appointment_sync_state(bigint[]) IS
    'What the worker needs to sync these appointments, one calsync.appointment_sync_state each (deleted ones too).';

-- name: drop_finish
-- squawk-ignore ban-drop-function -- its return type changes; created again with its grants in the same unit (the revision's header says old workers stop)
DROP FUNCTION calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval);

-- name: finish
-- from: sql/functions/finish_sync_events.sql
-- Record a batch of attempts in one call. p_results is a JSON array of calsync.sync_result (the Python twin is
-- worker/sync/contract.py SyncResult): facts only (the outcome's category, what Cal.com has now, the superseded
-- bookings cancelled, every exchange). Every status is decided here, once:
--   the event's, by calsync.sync_outcome (synced, retry, dead; a rate-limited try is not an attempt);
--   calsync.synced_bookings: the last word per (appointment, slot);
--   the appointment's and each phase's Cal.com columns from those bookings, their sync status from the event's.
-- Completion checks ownership: only events this worker still holds (running, locked_by = p_worker) change; the
-- exchanges are archived either way. Returns each event's recorded outcome ('lease_lost': not this worker's).
CREATE OR REPLACE FUNCTION calsync.finish_sync_events(p_worker text, p_results jsonb, p_max_attempts integer,
                                                     p_now timestamptz DEFAULT now(),
                                                     p_retry_base interval DEFAULT '5 seconds',
                                                     p_retry_cap interval DEFAULT '1 hour')
RETURNS TABLE (recorded_event_id uuid, recorded_outcome text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_all calsync.sync_result[] := ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::calsync.sync_result, p_results) AS r);
    v_owned uuid[];
    v_last calsync.sync_result[];  -- the last result of each event this worker still holds
    v_decided calsync.sync_decision[];
    v_writer text := current_setting('calsync.writer', true);
BEGIN
    PERFORM calsync.authenticate_worker('calsync.finish_sync_events', p_worker);  -- only as the worker it is
    PERFORM calsync.enforce_worker_limits('calsync.finish_sync_events', p_now);
    PERFORM set_config('calsync.writer', 'worker', true);  -- these writes must not enqueue (no loops)
    INSERT INTO calsync.sync_attempts
        (outbox_id, appointment_id, phase_id, worker_id, action, attempt, request_method, request_path,
         request_body, response_status, response_headers, response_body, response_size, response_truncated,
         duration_ms, category, retryable, error, created_at)
    SELECT r.event_id, r.appointment_id, e.phase_id, p_worker, e.action, d.attempts, e.request_method,
           e.request_path, e.request_body, e.response_status, e.response_headers, e.response_body, e.response_size,
           e.response_truncated, e.duration_ms, e.category, CASE WHEN e.category <> 'OK' THEN k.retryable END,
           e.error, coalesce(e.at, p_now)
    FROM unnest(v_all) AS r
    CROSS JOIN LATERAL unnest(r.exchanges) AS e
    LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = r.event_id
    LEFT JOIN remediation.categories k ON k.category = e.category;

    SELECT coalesce(array_agg(x.outbox_id), '{}') INTO v_owned
    FROM (SELECT d.outbox_id FROM calsync.outbox_delivery d
          WHERE d.outbox_id IN (SELECT r.event_id FROM unnest(v_all) AS r)
            AND d.locked_by = p_worker AND d.status = 'running'
          ORDER BY d.outbox_id FOR UPDATE) AS x;

    RETURN QUERY SELECT DISTINCT r.event_id, 'lease_lost' FROM unnest(v_all) AS r WHERE NOT r.event_id = ANY (v_owned);

    -- a batch may hold two results of one event (its lease ran out and it was claimed again): the last counts
    v_last := ARRAY(SELECT DISTINCT ON ((v_all[i]).event_id) v_all[i] FROM generate_subscripts(v_all, 1) AS i
                    WHERE (v_all[i]).event_id = ANY (v_owned) ORDER BY (v_all[i]).event_id, i DESC);

    -- what Cal.com has now, per appointment and slot (calsync.synced_bookings). One result may name a slot more
    -- than once (found by the lookup, then moved or cancelled and booked again): the last word counts.
    WITH b AS (
        SELECT DISTINCT ON ((v_all[i]).appointment_id, coalesce(f.phase_id, 0))
               (v_all[i]).appointment_id AS appointment_id, coalesce(f.phase_id, 0) AS slot, f.uid, f.booking_id,
               f.start_at, f.end_at, f.event_type_id, coalesce(f.cancelled, false) AS cancelled
        FROM generate_subscripts(v_all, 1) AS i,
             unnest((v_all[i]).bookings) WITH ORDINALITY
                 AS f(phase_id, uid, booking_id, start_at, end_at, event_type_id, cancelled, fi)
        WHERE (v_all[i]).event_id = ANY (v_owned) AND f.uid IS NOT NULL
        ORDER BY (v_all[i]).appointment_id, coalesce(f.phase_id, 0), i DESC, fi DESC
    ),
    gone AS (
        DELETE FROM calsync.synced_bookings s USING b
        WHERE b.cancelled AND s.appointment_id = b.appointment_id AND s.slot = b.slot
    )
    INSERT INTO calsync.synced_bookings AS s (appointment_id, slot, uid, booking_id, start_at, end_at, event_type_id, synced_at)
    SELECT b.appointment_id, b.slot, b.uid, b.booking_id, b.start_at, b.end_at, b.event_type_id, p_now
    FROM b WHERE NOT b.cancelled
    ON CONFLICT (appointment_id, slot) DO UPDATE
        SET uid = excluded.uid, booking_id = excluded.booking_id, start_at = excluded.start_at,
            end_at = excluded.end_at, event_type_id = excluded.event_type_id, synced_at = excluded.synced_at;

    UPDATE calsync.superseded_phases sp SET calcom_cancelled_at = p_now
    FROM unnest(v_all) AS r, unnest(r.superseded) AS x(id)
    WHERE r.event_id = ANY (v_owned) AND sp.id = x.id AND sp.appointment_id = r.appointment_id;

    -- each event's last result, decided: its outcome (calsync.sync_outcome) and what the state changes need
    v_decided := ARRAY(
        SELECT ROW(r.event_id, r.appointment_id,
                   calsync.sync_outcome(r.category, coalesce(r.skipped, false), d.attempts, p_max_attempts),
                   r.category, r.error, coalesce((r.detail).message, r.error),
                   CASE WHEN r.detail IS DISTINCT FROM NULL THEN to_jsonb(r.detail) || jsonb_build_object(
                       'category', r.category, 'retryable', k.retryable, 'attempt', d.attempts) END,
                   r.retry_after_s, coalesce(cardinality(r.bookings), 0) > 0, coalesce(cardinality(r.exchanges), 0))::calsync.sync_decision
        FROM unnest(v_last) AS r
        JOIN calsync.outbox_delivery d ON d.outbox_id = r.event_id
        LEFT JOIN remediation.categories k ON k.category = r.category);
    RETURN QUERY SELECT x.event_id, x.outcome FROM unnest(v_decided) AS x;

    -- phases: the booking Cal.com has for each; the staff-required phases without one in this result take the
    -- event's state (synced once they have a booking, failed with the reason)
    UPDATE appointment_phases p
    SET calcom_booking_id = s.booking_id, calcom_booking_uid = s.uid, calcom_sync_status = 'synced',
        sync_error_message = NULL, updated_at = p_now
    FROM unnest(v_last) AS r
    CROSS JOIN LATERAL (SELECT DISTINCT f.phase_id FROM unnest(r.bookings) AS f
                        WHERE f.phase_id IS NOT NULL AND NOT coalesce(f.cancelled, false) AND f.uid IS NOT NULL) AS f
    JOIN calsync.synced_bookings s ON s.appointment_id = r.appointment_id AND s.slot = f.phase_id
    WHERE p.id = f.phase_id AND p.appointment_id = r.appointment_id;

    UPDATE appointment_phases p
    SET calcom_sync_status = CASE WHEN x.outcome = 'synced' THEN 'synced' ELSE 'failed' END,
        sync_error_message = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.message END,
        updated_at = p_now
    FROM unnest(v_decided) AS x
    JOIN appointments a ON a.id = x.appointment_id AND a.is_composite
    WHERE x.outcome <> 'skipped' AND p.appointment_id = x.appointment_id AND p.staff_required
      AND NOT EXISTS (SELECT 1 FROM unnest(v_last) AS r, unnest(r.bookings) AS f
                      WHERE r.event_id = x.event_id AND f.phase_id = p.id AND NOT coalesce(f.cancelled, false)
                        AND f.uid IS NOT NULL)
      AND p.calcom_sync_status IS DISTINCT FROM CASE WHEN x.outcome = 'synced' THEN 'synced' ELSE 'failed' END
      AND (x.outcome <> 'synced' OR p.calcom_booking_uid IS NOT NULL);

    -- the appointment: its booking (its own, or for a composite its first staff-required phase's, as the app
    -- did), and its sync state from the event's outcome
    UPDATE appointments a
    SET calcom_booking_id = CASE WHEN bk.uid IS NOT NULL AND NOT a.is_composite THEN bk.booking_id ELSE a.calcom_booking_id END,
        calcom_v2_booking_id = CASE WHEN bk.uid IS NOT NULL THEN bk.booking_id::text ELSE a.calcom_v2_booking_id END,
        calcom_v2_booking_uid = coalesce(bk.uid, a.calcom_v2_booking_uid),
        calcom_sync_status = CASE WHEN x.outcome = 'synced' THEN 'synced' WHEN x.outcome = 'dead' THEN 'failed'
                                  WHEN a.calcom_sync_status = 'synced' THEN 'pending' ELSE a.calcom_sync_status END,
        sync_error_message = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.error END,
        sync_error_code = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.category END,
        sync_error_detail = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.detail END,
        sync_attempt_count = least(a.sync_attempt_count + x.exchanges, 32767),
        last_sync_attempt_at = p_now,
        requires_manual_review = CASE WHEN x.outcome = 'dead' THEN true WHEN x.outcome = 'synced' THEN false
                                      ELSE a.requires_manual_review END,
        manual_review_flagged_at = CASE WHEN x.outcome = 'dead' THEN coalesce(a.manual_review_flagged_at, p_now)
                                        WHEN x.outcome = 'synced' THEN NULL ELSE a.manual_review_flagged_at END
    FROM unnest(v_decided) AS x
    LEFT JOIN LATERAL (
        SELECT f.uid, f.booking_id
        FROM unnest(v_last) AS r, unnest(r.bookings) WITH ORDINALITY AS f(phase_id, uid, booking_id, start_at, end_at,
                                                                          event_type_id, cancelled, fi)
        WHERE r.event_id = x.event_id AND f.uid IS NOT NULL AND NOT coalesce(f.cancelled, false)
          AND f.phase_id IS NOT DISTINCT FROM (
              SELECT min(p.id) FROM appointment_phases p
              WHERE p.appointment_id = x.appointment_id AND p.staff_required
                AND EXISTS (SELECT 1 FROM appointments c WHERE c.id = x.appointment_id AND c.is_composite))
        ORDER BY fi DESC LIMIT 1
    ) AS bk ON true
    WHERE a.id = x.appointment_id AND x.outcome <> 'skipped';

    -- delivered (or nothing to deliver: skipped): the event and every earlier event of the appointment it covered
    WITH done AS (
        SELECT d.aggregateid, d.covers_seq FROM calsync.outbox_delivery d
        JOIN unnest(v_decided) AS x ON x.event_id = d.outbox_id
        WHERE x.outcome IN ('synced', 'skipped')
    ), events AS (
        DELETE FROM calsync.outbox e USING done
        WHERE e.aggregateid = done.aggregateid AND e.seq <= done.covers_seq
        RETURNING e.id
    )
    DELETE FROM calsync.outbox_delivery d USING events WHERE d.outbox_id = events.id;

    -- retry later (a rate-limited try does not count as an attempt), or dead
    UPDATE calsync.outbox_delivery d
    SET status = CASE WHEN x.outcome = 'dead' THEN 'dead' ELSE 'retry' END,
        attempts = d.attempts - CASE WHEN x.outcome = 'rate_limited' THEN 1 ELSE 0 END,
        next_attempt_at = p_now + CASE WHEN x.outcome = 'rate_limited'
                                       THEN coalesce(x.retry_after_s, 60) * interval '1 second'
                                       -- an attempt that got somewhere (some bookings made) retries soon
                                       WHEN x.made_progress THEN p_retry_base
                                       ELSE calsync.retry_delay(d.attempts, p_retry_base, p_retry_cap) END,
        locked_by = NULL, locked_until = NULL,
        last_error = x.error, last_category = x.category,
        processed_at = CASE WHEN x.outcome = 'dead' THEN p_now END
    FROM unnest(v_decided) AS x
    WHERE d.outbox_id = x.event_id AND x.outcome IN ('retry', 'dead', 'rate_limited');
    PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
END
$$;
COMMENT ON FUNCTION calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval) IS
    'Record a batch of sync results (calsync.sync_result): archive the exchanges, derive every status (event, appointment, phases) from the facts, delete delivered events, schedule retries or mark dead. Returns each event''s recorded outcome (lease_lost when not the worker''s).';

-- name: grants
REVOKE EXECUTE ON FUNCTION calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval) TO calsync_worker;

-- name: previous_finish
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

-- name: rename
-- one name per thing: calsync's batch of revision 0006's backfill vs the runbook step remediation.backfill_placeholder_emails
-- squawk-ignore renaming-object -- only revision 0006's backfill calls it, at that revision's time
ALTER FUNCTION calsync.backfill_placeholder_emails(bigint, integer) RENAME TO placeholder_email_backfill_batch;

-- name: rename_back
ALTER FUNCTION calsync.placeholder_email_backfill_batch(bigint, integer) RENAME TO backfill_placeholder_emails;

-- name: drop
DROP FUNCTION calsync.appointment_sync_state(bigint[]);
DROP FUNCTION calsync.sync_outcome(text, boolean, integer, integer);
DROP TYPE calsync.sync_result, calsync.sync_failure_detail, calsync.sync_exchange, calsync.sync_booking_fact,
    calsync.sync_decision, calsync.appointment_sync_state, calsync.sync_superseded_booking, calsync.sync_known_booking,
    calsync.sync_segment_event_type, calsync.sync_phase, calsync.sync_service, calsync.sync_customer;
