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
