-- Delivery of the outbox: state lives in calsync.outbox_delivery (the outbox itself stays insert-only).
-- SECURITY DEFINER: the worker's role runs these functions and reads what it syncs, nothing more.
-- A delivery row is made by the claim, one per event being worked on; on success the event, every
-- earlier event of the same appointment, and their delivery rows are deleted (the attempts archive in
-- calsync.sync_attempts is the record). Each transition is one function, in the file named after it.

-- Claim up to p_limit events, at most one per appointment: an event is claimable when no earlier event of
-- its appointment is still undelivered (unless dead), and it is new or its retry is due. One statement:
-- FOR UPDATE SKIP LOCKED on the outbox rows, then INSERT … ON CONFLICT DO UPDATE … WHERE status = 'retry'
-- on the delivery row, so a racing claimer can never take an event that is running. covers_seq is the
-- appointment's newest event at claim time: the worker syncs the appointment's current state, which
-- coalesces every event up to it (create then cancel sends nothing; reschedules collapse to the last).
-- The caller must be p_worker (calsync.authenticate_worker) and, as calsync_worker, lease for at most
-- worker_max_lease at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM calsync.authenticate_worker('calsync.claim_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.claim_sync_events', p_now,
                                          p_lease => coalesce(p_lease, interval '0'));
    RETURN QUERY
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
    FROM claimed c JOIN heads h ON h.id = c.outbox_id;
END
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment (one statement, SKIP LOCKED).';
