-- Frozen SQL of revision 0026 (never edit; sql/ holds the current definitions).

-- name: functions
-- from: sql/functions/finish_sync_events.sql
-- Record a batch of attempts in one call. p_results is a JSON array of calsync.sync_result (the Python twin is
-- worker/sync/contract.py SyncResult): facts only (the outcome's category, what Cal.com has now, the superseded
-- bookings cancelled, every exchange). Every status is decided here, once:
--   the event's, by calsync.sync_outcome (synced, retry, dead; a rate-limited or paused try is not an attempt);
--   calsync.synced_bookings: the last word per (appointment, slot);
--   the appointment's and each phase's Cal.com columns from those bookings, their sync status from the event's.
-- Completion checks ownership: only events this worker still holds (running, locked_by = p_worker) change; the
-- exchanges are archived either way. A failed exchange is archived in full (request, status, headers, body, as
-- capped by the worker with the size Cal.com sent); a successful one as what traces it: status, Cal.com's
-- x-request-id, the booking's uid, latency and sizes, with its bodies and other headers only when the setting
-- archive_success_bodies (calsync.settings) is true (bodies_kept says which). Returns each event's recorded outcome ('lease_lost': not this worker's).
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
    v_full boolean := coalesce((SELECT s.value = 'true' FROM calsync.settings s WHERE s.key = 'archive_success_bodies'),
                               false);
BEGIN
    PERFORM calsync.authenticate_worker('calsync.finish_sync_events', p_worker);  -- only as the worker it is
    PERFORM calsync.enforce_worker_limits('calsync.finish_sync_events', p_now);
    PERFORM set_config('calsync.writer', 'worker', true);  -- these writes must not enqueue (no loops)
    INSERT INTO calsync.sync_attempts
        (outbox_id, appointment_id, phase_id, worker_id, action, attempt, request_method, request_path,
         request_body, response_status, response_headers, response_body, response_size, response_truncated,
         duration_ms, category, retryable, error, created_at, booking_uid, request_size, bodies_kept)
    SELECT r.event_id, r.appointment_id, e.phase_id, p_worker, e.action, d.attempts, e.request_method,
           e.request_path, CASE WHEN x.kept THEN e.request_body END, e.response_status,
           CASE WHEN x.kept THEN e.response_headers
                ELSE nullif(jsonb_strip_nulls(jsonb_build_object('x-request-id', e.response_headers->'x-request-id')),
                            '{}') END,
           CASE WHEN x.kept THEN e.response_body END, e.response_size, e.response_truncated, e.duration_ms,
           e.category, CASE WHEN e.category <> 'OK' THEN k.retryable END, e.error, coalesce(e.at, p_now),
           calsync.exchange_booking_uid(e.request_path, e.response_body), octet_length(e.request_body::text), x.kept
    FROM unnest(v_all) WITH ORDINALITY AS r
    CROSS JOIN LATERAL unnest(r.exchanges) WITH ORDINALITY AS e
    CROSS JOIN LATERAL (SELECT e.category IS DISTINCT FROM 'OK' OR v_full AS kept) AS x
    LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = r.event_id
    LEFT JOIN remediation.categories k ON k.category = e.category
    ORDER BY r.ordinality, e.ordinality;  -- ids in the order the exchanges were made (the history reads by id)

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
    -- (the chaos soak: cancelled for a move, the new create failed, and the next attempt saw nothing to do). A slot
    -- left with no live booking forgets whatever uid the app named for it: also the one an outside reschedule
    -- moved away from, when the worker cancelled that booking's successor (the soak again).
    UPDATE appointments a SET calcom_v2_booking_uid = NULL, calcom_v2_booking_id = NULL,
        calcom_booking_id = CASE WHEN a.is_composite THEN a.calcom_booking_id END
    FROM unnest(v_last) AS r, unnest(r.bookings) AS f
    WHERE a.id = r.appointment_id AND coalesce(f.cancelled, false) AND a.calcom_v2_booking_uid IS NOT NULL
      AND a.status NOT IN ('cancelled', 'no_show', 'completed')
      -- the appointment's own slot (a composite's: its first staff-required phase, as below)
      AND CASE WHEN f.phase_id IS NOT DISTINCT FROM (
                   CASE WHEN a.is_composite THEN (SELECT min(p.id) FROM appointment_phases p
                                                  WHERE p.appointment_id = a.id AND p.staff_required) END)
               THEN NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s
                                WHERE s.appointment_id = a.id AND s.slot = coalesce(f.phase_id, 0))
               ELSE f.uid = a.calcom_v2_booking_uid
                    AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s WHERE s.appointment_id = a.id AND s.uid = f.uid) END;
    UPDATE appointment_phases p SET calcom_booking_uid = NULL, calcom_booking_id = NULL, calcom_sync_status = 'pending',
        updated_at = p_now
    FROM unnest(v_last) AS r, unnest(r.bookings) AS f
    WHERE p.appointment_id = r.appointment_id AND f.phase_id = p.id AND coalesce(f.cancelled, false)
      AND p.calcom_booking_uid IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s WHERE s.appointment_id = p.appointment_id AND s.slot = p.id);

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
    SET calcom_booking_id = CASE WHEN bk.live AND NOT a.is_composite THEN bk.booking_id ELSE a.calcom_booking_id END,
        calcom_v2_booking_id = CASE WHEN bk.live THEN bk.booking_id::text ELSE a.calcom_v2_booking_id END,
        calcom_v2_booking_uid = CASE WHEN bk.live THEN bk.uid ELSE a.calcom_v2_booking_uid END,
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
        -- the result's last word on that booking: a live one names it; a cancelled one (found live, then
        -- cancelled for a move whose create failed) leaves the uid columns as the UPDATE above cleared them
        SELECT f.uid, f.booking_id, NOT coalesce(f.cancelled, false) AS live
        FROM unnest(v_last) AS r, unnest(r.bookings) WITH ORDINALITY AS f(phase_id, uid, booking_id, start_at, end_at,
                                                                          event_type_id, cancelled, fi)
        WHERE r.event_id = x.event_id AND f.uid IS NOT NULL
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

-- name: previous_functions
-- revision 0020's calsync.finish_sync_events
-- Record a batch of attempts in one call. p_results is a JSON array of calsync.sync_result (the Python twin is
-- worker/sync/contract.py SyncResult): facts only (the outcome's category, what Cal.com has now, the superseded
-- bookings cancelled, every exchange). Every status is decided here, once:
--   the event's, by calsync.sync_outcome (synced, retry, dead; a rate-limited or paused try is not an attempt);
--   calsync.synced_bookings: the last word per (appointment, slot);
--   the appointment's and each phase's Cal.com columns from those bookings, their sync status from the event's.
-- Completion checks ownership: only events this worker still holds (running, locked_by = p_worker) change; the
-- exchanges are archived either way. A failed exchange is archived in full (request, status, headers, body, as
-- capped by the worker with the size Cal.com sent); a successful one as what traces it: status, Cal.com's
-- x-request-id, the booking's uid, latency and sizes, with its bodies and other headers only when the setting
-- archive_success_bodies (calsync.settings) is true (bodies_kept says which). Returns each event's recorded outcome ('lease_lost': not this worker's).
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
    v_full boolean := coalesce((SELECT s.value = 'true' FROM calsync.settings s WHERE s.key = 'archive_success_bodies'),
                               false);
BEGIN
    PERFORM calsync.authenticate_worker('calsync.finish_sync_events', p_worker);  -- only as the worker it is
    PERFORM calsync.enforce_worker_limits('calsync.finish_sync_events', p_now);
    PERFORM set_config('calsync.writer', 'worker', true);  -- these writes must not enqueue (no loops)
    INSERT INTO calsync.sync_attempts
        (outbox_id, appointment_id, phase_id, worker_id, action, attempt, request_method, request_path,
         request_body, response_status, response_headers, response_body, response_size, response_truncated,
         duration_ms, category, retryable, error, created_at, booking_uid, request_size, bodies_kept)
    SELECT r.event_id, r.appointment_id, e.phase_id, p_worker, e.action, d.attempts, e.request_method,
           e.request_path, CASE WHEN x.kept THEN e.request_body END, e.response_status,
           CASE WHEN x.kept THEN e.response_headers
                ELSE nullif(jsonb_strip_nulls(jsonb_build_object('x-request-id', e.response_headers->'x-request-id')),
                            '{}') END,
           CASE WHEN x.kept THEN e.response_body END, e.response_size, e.response_truncated, e.duration_ms,
           e.category, CASE WHEN e.category <> 'OK' THEN k.retryable END, e.error, coalesce(e.at, p_now),
           calsync.exchange_booking_uid(e.request_path, e.response_body), octet_length(e.request_body::text), x.kept
    FROM unnest(v_all) AS r
    CROSS JOIN LATERAL unnest(r.exchanges) AS e
    CROSS JOIN LATERAL (SELECT e.category IS DISTINCT FROM 'OK' OR v_full AS kept) AS x
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
