-- A claim whose reply never arrived (the connection died after the commit) leaves leases that a live worker
-- holds without knowing: the reaper would not touch them (the worker heartbeats) until the lease ran out.
-- The worker names what it does hold; everything else it holds is given back, due at once. Only its own
-- (calsync.authenticate_worker), at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.release_unknown_leases(p_worker text, p_held uuid[],
                                                         p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.release_unknown_leases', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.release_unknown_leases', p_now);
    UPDATE calsync.outbox_delivery
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'released: the worker lost the reply to its claim'
    WHERE status = 'running' AND locked_by = p_worker AND NOT (outbox_id = ANY (p_held));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.release_unknown_leases(text, uuid[], timestamptz) IS
    'Give back the leases a worker holds but does not know of (a claim whose reply was lost); due at once.';
