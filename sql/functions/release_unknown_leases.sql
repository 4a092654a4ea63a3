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
