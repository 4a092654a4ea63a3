-- Delivery of the outbox: state lives in calsync.outbox_delivery (the outbox itself stays insert-only).
-- SECURITY DEFINER: the worker's role runs these functions and reads what it syncs, nothing more.
-- A delivery row is made by the claim, one per event being worked on; on success the event, every
-- earlier event of the same appointment, and their delivery rows are deleted (the attempts archive in
-- calsync.sync_attempts is the record). Each transition is one function, in the file named after it.

-- Claim up to p_limit events, at most one per appointment, interleaving companies (fair share): an event is
-- claimable when no earlier event of its appointment is still undelivered (unless dead), and it is new or its
-- retry is due. The companies with events are found by a skip scan of outbox_company_id_seq_index (one probe
-- per company), each gives at most p_per_company of its oldest claimable events, and they are taken round by
-- round (every company's first, then every company's second, …, each round in enqueue order): a quiet
-- company's new booking is never queued behind another company's backlog. Companies in p_skip_companies are
-- left alone (the worker's: their key is paused, out of tokens or has no credentials).
-- One statement: FOR UPDATE SKIP LOCKED on the outbox rows, then INSERT … ON CONFLICT DO UPDATE … WHERE status =
-- 'retry' on the delivery row, so a racing claimer can never take an event that is running. covers_seq is the
-- appointment's newest event at claim time: the worker syncs the appointment's current state, which coalesces
-- every event up to it (create then cancel sends nothing; reschedules collapse to the last).
-- The caller must be p_worker (calsync.authenticate_worker) and, as calsync_worker, lease for at most
-- worker_max_lease at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_skip_companies bigint[], p_per_company integer,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint,
               company_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM calsync.authenticate_worker('calsync.claim_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.claim_sync_events', p_now,
                                          p_lease => coalesce(p_lease, interval '0'));
    RETURN QUERY
    WITH RECURSIVE lanes AS (  -- the companies that have events: one index probe each
        (SELECT o.company_id FROM calsync.outbox o WHERE o.company_id IS NOT NULL ORDER BY o.company_id LIMIT 1)
        UNION ALL
        SELECT (SELECT o.company_id FROM calsync.outbox o WHERE o.company_id > l.company_id
                ORDER BY o.company_id LIMIT 1)
        FROM lanes l WHERE l.company_id IS NOT NULL
    ), open_lanes AS (
        SELECT l.company_id FROM lanes l
        WHERE l.company_id IS NOT NULL AND NOT l.company_id = ANY (coalesce(p_skip_companies, '{}'))
    ), claimable AS (  -- each company's oldest claimable events
        SELECT c.id, c.seq, c.company_id
        FROM open_lanes l
        CROSS JOIN LATERAL (
            SELECT o.id, o.seq, o.company_id
            FROM calsync.outbox o
            LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
            -- a range, not =: with = the planner drops company_id from the order and may walk outbox_seq_unique
            -- filtering on the company (all of a 100,000-event backlog for a quiet company's one event)
            WHERE o.company_id BETWEEN l.company_id AND l.company_id
              AND o.aggregatetype = 'appointment'
              AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
              AND NOT EXISTS (
                  SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
                  WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
            ORDER BY o.company_id, o.seq  -- the order of outbox_company_id_seq_index
            LIMIT greatest(coalesce(p_per_company, p_limit), 1)
        ) AS c
        UNION ALL  -- events whose appointment was gone when they were enqueued (no company): a lane of their own
        SELECT * FROM (
            SELECT o.id, o.seq, o.company_id
            FROM calsync.outbox o
            LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
            WHERE o.company_id IS NULL
              AND o.aggregatetype = 'appointment'
              AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
              AND NOT EXISTS (
                  SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
                  WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
            ORDER BY o.company_id, o.seq
            LIMIT greatest(coalesce(p_per_company, p_limit), 1)
        ) AS n
    ), candidates AS (  -- round r holds every company's r-th event
        SELECT c.id, c.seq, row_number() OVER (PARTITION BY c.company_id ORDER BY c.seq) AS round FROM claimable c
    ), heads AS (
        SELECT o.id, o.aggregateid, o.type, o.company_id
        FROM calsync.outbox o JOIN candidates c ON c.id = o.id
        ORDER BY c.round, c.seq
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
    SELECT c.outbox_id, c.aggregateid::bigint, h.type, c.attempts, c.covers_seq, h.company_id
    FROM claimed c JOIN heads h ON h.id = c.outbox_id;
END
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, bigint[], integer, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment and p_per_company per company, companies interleaved, p_skip_companies left alone (one statement, SKIP LOCKED).';

-- The claim of workers before revision 0023 (one key for every company): the same claim, no company left out.
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.outbox_id, c.appointment_id, c.event_type, c.attempts, c.covers_seq
    FROM calsync.claim_sync_events(p_worker, p_limit, p_lease, '{}'::bigint[], p_limit, p_now) AS c
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment, companies interleaved (the claim of workers before revision 0023).';
