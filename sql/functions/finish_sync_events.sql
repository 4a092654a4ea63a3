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
