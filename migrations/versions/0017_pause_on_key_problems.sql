-- Frozen SQL of revision 0017 (never edit; sql/ holds the current definitions).

-- name: table
CREATE TABLE calsync.key_problems (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_ref      text NOT NULL,
    category     text NOT NULL,
    message      text NOT NULL,
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    reported_by  text,
    resolved_at  timestamptz
);
CREATE UNIQUE INDEX key_problems_one_open_per_key ON calsync.key_problems (key_ref) WHERE resolved_at IS NULL;
COMMENT ON TABLE calsync.key_problems IS
    'Cal.com keys (or base URLs) Cal.com refuses: the worker pauses them and reports here; resolved, never deleted.';
COMMENT ON COLUMN calsync.key_problems.key_ref IS 'which key, by name (default, or a company), never the key itself';
COMMENT ON COLUMN calsync.key_problems.category IS 'AUTH, ROUTE_NOT_FOUND or REDIRECTED (remediation.categories.scope = key)';

-- name: categories
-- squawk-ignore constraint-missing-not-valid -- remediation.categories holds some twenty rows
ALTER TABLE remediation.categories ADD COLUMN scope text NOT NULL DEFAULT 'appointment'
    CONSTRAINT categories_scope_is_appointment_or_key CHECK (scope IN ('appointment', 'key'));
COMMENT ON COLUMN remediation.categories.scope IS
    'appointment: a problem of one appointment''s sync; key: of the Cal.com key or base URL, which pauses every sync of the key (not counted as attempts) until it works';

-- name: category_rows
UPDATE remediation.categories SET scope = 'key' WHERE category IN ('AUTH', 'REDIRECTED');
INSERT INTO remediation.categories
    (category, origin, retryable, requeue_when_fixed, description, recommended_action, runbook_step, sort_order, scope)
VALUES
 ('ROUTE_NOT_FOUND', 'worker', true, true, 'Cal.com has no such route (404 "Cannot POST /v2/v2/bookings"): the base URL is wrong',
  'Set CALCOM_BASE_URL to https://api.cal.com (with or without /v2); the syncs resume by themselves', 'requeue', 127, 'key'),
 ('EVENT_TYPE_LENGTH', 'worker', false, true, 'No length of the Cal.com event type is the appointment''s (or Cal.com booked another length): configuration drift',
  'Give the event type the length the error names (or map the service to one that has it), then requeue', 'requeue', 128, 'appointment'),
 ('RECURRING_EVENT_TYPE', 'worker', false, true, 'The event type is recurring: Cal.com booked a series (cancelled again) for one appointment',
  'Map the service to an event type without recurrence, then requeue', 'requeue', 129, 'appointment')
ON CONFLICT (category) DO NOTHING;

-- name: contract
CREATE TYPE calsync.sync_phone_finding AS (customer_id bigint, value text, reason text);
ALTER TYPE calsync.sync_result ADD ATTRIBUTE phone_findings calsync.sync_phone_finding[];

-- name: functions
-- from: sql/functions/sync_outcome.sql
-- from: sql/functions/finish_sync_events.sql
-- from: sql/functions/report_key_problem.sql
-- from: sql/functions/clear_key_problem.sql
-- The one place an attempt's outcome is decided, from its category and the event's attempts so far:
-- skipped (nothing to do), synced (category OK), rate_limited (does not count as an attempt), paused (a problem
-- of the key or base URL, remediation.categories.scope = 'key': not an attempt either, the event stays due), retry
-- (the category is retryable in remediation.categories and attempts remain), else dead.
CREATE OR REPLACE FUNCTION calsync.sync_outcome(p_category text, p_skipped boolean, p_attempts integer,
                                               p_max_attempts integer) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN p_skipped THEN 'skipped'
        WHEN p_category = 'OK' THEN 'synced'
        WHEN p_category = 'RATE_LIMITED' THEN 'rate_limited'
        WHEN k.scope = 'key' THEN 'paused'
        WHEN coalesce(k.retryable, false) AND p_attempts < p_max_attempts THEN 'retry'
        ELSE 'dead' END
    FROM (SELECT) AS one LEFT JOIN remediation.categories k ON k.category = p_category
$$;
COMMENT ON FUNCTION calsync.sync_outcome(text, boolean, integer, integer) IS
    'An attempt''s outcome (skipped, synced, rate_limited, paused, retry, dead) from its category and the attempts so far.';

-- Record a batch of attempts in one call. p_results is a JSON array of calsync.sync_result (the Python twin is
-- worker/sync/contract.py SyncResult): facts only (the outcome's category, what Cal.com has now, the superseded
-- bookings cancelled, every exchange). Every status is decided here, once:
--   the event's, by calsync.sync_outcome (synced, retry, dead; a rate-limited or paused try is not an attempt);
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

    -- phones Cal.com would refuse (libphonenumber, in the worker) are data-quality findings; fine ones resolve theirs
    PERFORM CASE WHEN f.reason IS NOT NULL
                 THEN calsync.record_contact_finding(f.customer_id, 'phone', f.value, f.reason, p_now) IS NOT NULL
                 ELSE calsync.resolve_contact_finding(f.customer_id, 'phone', p_now) END
    FROM (SELECT DISTINCT ON (f.customer_id) f.customer_id, f.value, f.reason
          FROM unnest(v_last) AS r, unnest(r.phone_findings) WITH ORDINALITY AS f(customer_id, value, reason, fi)
          ORDER BY f.customer_id, fi DESC) AS f;

    -- a booking Cal.com no longer has is no longer the live appointment's (or phase's): the app's own uid columns
    -- forget it, so that a later attempt books again instead of taking the cancelled uid for a booking that exists
    -- (the chaos soak: cancelled for a move, the new create failed, and the next attempt saw nothing to do)
    UPDATE appointments a SET calcom_v2_booking_uid = NULL, calcom_v2_booking_id = NULL,
        calcom_booking_id = CASE WHEN a.is_composite THEN a.calcom_booking_id END
    FROM unnest(v_last) AS r, unnest(r.bookings) AS f
    WHERE a.id = r.appointment_id AND coalesce(f.cancelled, false) AND f.uid = a.calcom_v2_booking_uid
      AND a.status NOT IN ('cancelled', 'no_show', 'completed')
      AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s WHERE s.appointment_id = a.id AND s.uid = f.uid);
    UPDATE appointment_phases p SET calcom_booking_uid = NULL, calcom_booking_id = NULL, calcom_sync_status = 'pending',
        updated_at = p_now
    FROM unnest(v_last) AS r, unnest(r.bookings) AS f
    WHERE p.appointment_id = r.appointment_id AND f.phase_id = p.id AND coalesce(f.cancelled, false)
      AND f.uid = p.calcom_booking_uid
      AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s WHERE s.appointment_id = p.appointment_id AND s.uid = f.uid);

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

    -- retry later (a rate-limited or paused try does not count as an attempt), or dead
    UPDATE calsync.outbox_delivery d
    SET status = CASE WHEN x.outcome = 'dead' THEN 'dead' ELSE 'retry' END,
        attempts = d.attempts - CASE WHEN x.outcome IN ('rate_limited', 'paused') THEN 1 ELSE 0 END,
        next_attempt_at = p_now + CASE WHEN x.outcome = 'rate_limited'
                                       THEN coalesce(x.retry_after_s, 60) * interval '1 second'
                                       -- the key or base URL is refused: due again as soon as it works (the
                                       -- worker stops claiming until a probe succeeds)
                                       WHEN x.outcome = 'paused' THEN interval '0'
                                       -- an attempt that got somewhere (some bookings made) retries soon
                                       WHEN x.made_progress THEN p_retry_base
                                       ELSE calsync.retry_delay(d.attempts, p_retry_base, p_retry_cap) END,
        locked_by = NULL, locked_until = NULL,
        last_error = x.error, last_category = x.category,
        processed_at = CASE WHEN x.outcome = 'dead' THEN p_now END
    FROM unnest(v_decided) AS x
    WHERE d.outbox_id = x.event_id AND x.outcome IN ('retry', 'dead', 'rate_limited', 'paused');
    PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
END
$$;
COMMENT ON FUNCTION calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval) IS
    'Record a batch of sync results (calsync.sync_result): archive the exchanges, derive every status (event, appointment, phases) from the facts, delete delivered events, schedule retries or mark dead. Returns each event''s recorded outcome (lease_lost when not the worker''s).';

-- A Cal.com key (or the base URL it is used with) is refused: 401/403, a route that does not exist, a redirect.
-- Not a failure of any appointment: the worker pauses the key and reports it here once per problem; it shows as
-- a critical alert in remediation.sync_health until calsync.clear_key_problem. key_ref names the key without
-- being it ('default', later a company), never the key itself.
CREATE OR REPLACE FUNCTION calsync.report_key_problem(p_worker text, p_key_ref text, p_category text, p_message text,
                                                     p_now timestamptz DEFAULT now()) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM calsync.authenticate_worker('calsync.report_key_problem', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.report_key_problem', p_now);
    INSERT INTO calsync.key_problems AS k (key_ref, category, message, first_seen, last_seen, reported_by)
    VALUES (p_key_ref, p_category, left(p_message, 2000), p_now, p_now, p_worker)
    ON CONFLICT (key_ref) WHERE resolved_at IS NULL DO UPDATE
        SET category = excluded.category, message = excluded.message, last_seen = excluded.last_seen,
            reported_by = excluded.reported_by;
END
$$;
COMMENT ON FUNCTION calsync.report_key_problem(text, text, text, text, timestamptz) IS
    'Record that Cal.com refuses a key or its base URL (one open row per key_ref); shown in remediation.sync_health.';

-- The key works again (the worker's probe succeeded): its open problem is resolved (kept, with when).
CREATE OR REPLACE FUNCTION calsync.clear_key_problem(p_worker text, p_key_ref text, p_now timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.clear_key_problem', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.clear_key_problem', p_now);
    UPDATE calsync.key_problems SET resolved_at = p_now WHERE key_ref = p_key_ref AND resolved_at IS NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.clear_key_problem(text, text, timestamptz) IS
    'Resolve the open problem of a key once Cal.com accepts it again; returns how many were open (0 or 1).';

-- name: view
-- from: sql/views/remediation_sync_health.sql
-- The dashboard, as one row. Thresholds are calsync.settings (health_*):
--   CRITICAL: failed syncs >= health_failed_critical (default 10), or the 24 h success rate is below
--             health_success_rate_critical (default 0.8) with at least 10 attempts;
--             or Cal.com refuses a key (calsync.key_problems: bad key, wrong base URL);
--   DEGRADED: any failed sync, dead event, failure older than 24 h, or pending sync older than 1 h;
--   HEALTHY:  none of these.
CREATE OR REPLACE VIEW remediation.sync_health AS
WITH t AS (
    SELECT
        (SELECT value::int FROM calsync.settings WHERE key = 'health_failed_critical') AS failed_critical,
        (SELECT value::numeric FROM calsync.settings WHERE key = 'health_success_rate_critical') AS rate_critical
), n AS MATERIALIZED (  -- each count once (inlined, every use would count again)
    SELECT
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show'))::int AS pending,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed')::int AS failed,
        (SELECT count(*) FROM appointments WHERE requires_manual_review)::int AS manual_review,
        (SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'dead')::int AS dead_events,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed'
            AND coalesce(last_sync_attempt_at, manual_review_flagged_at, updated_at) < now() - interval '24 hours')::int
            AS ancient_failures,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show')
            AND coalesce(last_sync_attempt_at, created_at) < now() - interval '1 hour')::int AS stale_pending,
        h.attempted_24h,
        h.synced_24h,
        (SELECT count(*) FROM calsync.integrity_issues WHERE resolved_at IS NULL)::int AS integrity_issues
    FROM (  -- one index-only pass (remediation_appointments_last_sync_attempt_index includes the status)
        SELECT count(*)::int AS attempted_24h, count(*) FILTER (WHERE calcom_sync_status = 'synced')::int AS synced_24h
        FROM appointments WHERE last_sync_attempt_at > now() - interval '24 hours'
    ) AS h
), a AS (
    SELECT n.*, t.*,
           CASE WHEN n.attempted_24h > 0 THEN round(100.0 * n.synced_24h / n.attempted_24h, 2) END AS success_rate_24h,
           array_remove(ARRAY[
               CASE WHEN n.failed >= t.failed_critical
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs (threshold ' || t.failed_critical || ')') END,
               CASE WHEN n.attempted_24h >= 10 AND n.synced_24h < t.rate_critical * n.attempted_24h
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'success_rate', 'count', n.attempted_24h - n.synced_24h,
                         'message', 'success rate ' || round(100.0 * n.synced_24h / n.attempted_24h, 2) || ' % over 24 h (threshold '
                                    || round(100 * t.rate_critical) || ' %)') END,
               CASE WHEN n.failed > 0 AND n.failed < t.failed_critical
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs') END,
               CASE WHEN n.dead_events > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'dead_events', 'count', n.dead_events,
                         'message', n.dead_events || ' outbox events given up on') END,
               CASE WHEN n.ancient_failures > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'ancient_failures', 'count', n.ancient_failures,
                         'message', n.ancient_failures || ' failures older than 24 h') END,
               CASE WHEN n.stale_pending > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'stale_pending', 'count', n.stale_pending,
                         'message', n.stale_pending || ' syncs pending for more than 1 h') END
           ], NULL) || ARRAY(  -- a refused key pauses every sync that uses it
               SELECT jsonb_build_object('severity', 'critical', 'alert', 'key_refused', 'count', 1,
                      'message', 'Cal.com refuses key ' || k.key_ref || ' (' || k.category || ') since '
                                 || to_char(k.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC: '
                                 || k.message || '; its syncs wait and resume by themselves once it works')
               FROM calsync.key_problems k WHERE k.resolved_at IS NULL ORDER BY k.key_ref) AS alerts
    FROM n, t
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical') THEN 'CRITICAL'
            WHEN cardinality(a.alerts) > 0 THEN 'DEGRADED' ELSE 'HEALTHY' END AS health,
       a.success_rate_24h, a.attempted_24h, a.pending, a.failed, a.manual_review, a.dead_events,
       a.ancient_failures, a.stale_pending, a.integrity_issues,
       (SELECT count(*) FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical')::int AS critical_alerts,
       to_jsonb(a.alerts) AS alerts
FROM a;
COMMENT ON VIEW remediation.sync_health IS
    'The sync dashboard in one row. CRITICAL: failed >= health_failed_critical (10), 24 h success rate < health_success_rate_critical (80 %) or a key refused by Cal.com; DEGRADED: any failure, dead event, failure older than 24 h or pending older than 1 h; else HEALTHY.';
COMMENT ON COLUMN remediation.sync_health.health IS 'HEALTHY, DEGRADED or CRITICAL (thresholds in the view comment and calsync.settings)';
COMMENT ON COLUMN remediation.sync_health.success_rate_24h IS 'percent of appointments attempted in the last 24 h that are synced';
COMMENT ON COLUMN remediation.sync_health.attempted_24h IS 'appointments with a sync attempt in the last 24 h';
COMMENT ON COLUMN remediation.sync_health.pending IS 'live appointments waiting to sync';
COMMENT ON COLUMN remediation.sync_health.failed IS 'appointments whose sync failed';
COMMENT ON COLUMN remediation.sync_health.manual_review IS 'appointments flagged for a person';
COMMENT ON COLUMN remediation.sync_health.dead_events IS 'outbox events given up on';
COMMENT ON COLUMN remediation.sync_health.ancient_failures IS 'failed syncs whose last attempt is older than 24 h';
COMMENT ON COLUMN remediation.sync_health.stale_pending IS 'syncs pending for more than 1 h';
COMMENT ON COLUMN remediation.sync_health.integrity_issues IS 'open rows of calsync.integrity_issues';
COMMENT ON COLUMN remediation.sync_health.critical_alerts IS 'how many alerts are critical';
COMMENT ON COLUMN remediation.sync_health.alerts IS 'active alerts: [{severity, alert, count, message}]';

-- name: grants
GRANT EXECUTE ON FUNCTION calsync.report_key_problem(text, text, text, text, timestamptz),
    calsync.clear_key_problem(text, text, timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.report_key_problem(text, text, text, text, timestamptz),
    calsync.clear_key_problem(text, text, timestamptz) FROM PUBLIC;

-- name: previous_functions
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

-- name: previous_view
-- The dashboard, as one row. Thresholds are calsync.settings (health_*):
--   CRITICAL: failed syncs >= health_failed_critical (default 10), or the 24 h success rate is below
--             health_success_rate_critical (default 0.8) with at least 10 attempts;
--   DEGRADED: any failed sync, dead event, failure older than 24 h, or pending sync older than 1 h;
--   HEALTHY:  none of these.
CREATE OR REPLACE VIEW remediation.sync_health AS
WITH t AS (
    SELECT
        (SELECT value::int FROM calsync.settings WHERE key = 'health_failed_critical') AS failed_critical,
        (SELECT value::numeric FROM calsync.settings WHERE key = 'health_success_rate_critical') AS rate_critical
), n AS MATERIALIZED (  -- each count once (inlined, every use would count again)
    SELECT
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show'))::int AS pending,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed')::int AS failed,
        (SELECT count(*) FROM appointments WHERE requires_manual_review)::int AS manual_review,
        (SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'dead')::int AS dead_events,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed'
            AND coalesce(last_sync_attempt_at, manual_review_flagged_at, updated_at) < now() - interval '24 hours')::int
            AS ancient_failures,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show')
            AND coalesce(last_sync_attempt_at, created_at) < now() - interval '1 hour')::int AS stale_pending,
        h.attempted_24h,
        h.synced_24h,
        (SELECT count(*) FROM calsync.integrity_issues WHERE resolved_at IS NULL)::int AS integrity_issues
    FROM (  -- one index-only pass (remediation_appointments_last_sync_attempt_index includes the status)
        SELECT count(*)::int AS attempted_24h, count(*) FILTER (WHERE calcom_sync_status = 'synced')::int AS synced_24h
        FROM appointments WHERE last_sync_attempt_at > now() - interval '24 hours'
    ) AS h
), a AS (
    SELECT n.*, t.*,
           CASE WHEN n.attempted_24h > 0 THEN round(100.0 * n.synced_24h / n.attempted_24h, 2) END AS success_rate_24h,
           array_remove(ARRAY[
               CASE WHEN n.failed >= t.failed_critical
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs (threshold ' || t.failed_critical || ')') END,
               CASE WHEN n.attempted_24h >= 10 AND n.synced_24h < t.rate_critical * n.attempted_24h
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'success_rate', 'count', n.attempted_24h - n.synced_24h,
                         'message', 'success rate ' || round(100.0 * n.synced_24h / n.attempted_24h, 2) || ' % over 24 h (threshold '
                                    || round(100 * t.rate_critical) || ' %)') END,
               CASE WHEN n.failed > 0 AND n.failed < t.failed_critical
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs') END,
               CASE WHEN n.dead_events > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'dead_events', 'count', n.dead_events,
                         'message', n.dead_events || ' outbox events given up on') END,
               CASE WHEN n.ancient_failures > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'ancient_failures', 'count', n.ancient_failures,
                         'message', n.ancient_failures || ' failures older than 24 h') END,
               CASE WHEN n.stale_pending > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'stale_pending', 'count', n.stale_pending,
                         'message', n.stale_pending || ' syncs pending for more than 1 h') END
           ], NULL) AS alerts
    FROM n, t
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical') THEN 'CRITICAL'
            WHEN cardinality(a.alerts) > 0 THEN 'DEGRADED' ELSE 'HEALTHY' END AS health,
       a.success_rate_24h, a.attempted_24h, a.pending, a.failed, a.manual_review, a.dead_events,
       a.ancient_failures, a.stale_pending, a.integrity_issues,
       (SELECT count(*) FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical')::int AS critical_alerts,
       to_jsonb(a.alerts) AS alerts
FROM a;
COMMENT ON VIEW remediation.sync_health IS
    'The sync dashboard in one row. CRITICAL: failed >= health_failed_critical (10) or 24 h success rate < health_success_rate_critical (80 %); DEGRADED: any failure, dead event, failure older than 24 h or pending older than 1 h; else HEALTHY.';
COMMENT ON COLUMN remediation.sync_health.health IS 'HEALTHY, DEGRADED or CRITICAL (thresholds in the view comment and calsync.settings)';
COMMENT ON COLUMN remediation.sync_health.success_rate_24h IS 'percent of appointments attempted in the last 24 h that are synced';
COMMENT ON COLUMN remediation.sync_health.attempted_24h IS 'appointments with a sync attempt in the last 24 h';
COMMENT ON COLUMN remediation.sync_health.pending IS 'live appointments waiting to sync';
COMMENT ON COLUMN remediation.sync_health.failed IS 'appointments whose sync failed';
COMMENT ON COLUMN remediation.sync_health.manual_review IS 'appointments flagged for a person';
COMMENT ON COLUMN remediation.sync_health.dead_events IS 'outbox events given up on';
COMMENT ON COLUMN remediation.sync_health.ancient_failures IS 'failed syncs whose last attempt is older than 24 h';
COMMENT ON COLUMN remediation.sync_health.stale_pending IS 'syncs pending for more than 1 h';
COMMENT ON COLUMN remediation.sync_health.integrity_issues IS 'open rows of calsync.integrity_issues';
COMMENT ON COLUMN remediation.sync_health.critical_alerts IS 'how many alerts are critical';
COMMENT ON COLUMN remediation.sync_health.alerts IS 'active alerts: [{severity, alert, count, message}]';

-- name: drop
ALTER TYPE calsync.sync_result DROP ATTRIBUTE phone_findings;
DROP TYPE calsync.sync_phone_finding;
DROP FUNCTION calsync.report_key_problem(text, text, text, text, timestamptz);
DROP FUNCTION calsync.clear_key_problem(text, text, timestamptz);
DROP TABLE calsync.key_problems;
UPDATE remediation.categories SET scope = 'appointment';
ALTER TABLE remediation.categories DROP COLUMN scope;
