-- Shutdown: give back the events this worker holds and could not finish; they are due again at once.
-- The attempt still counts, so the next try looks the booking up before creating it. Only its own
-- (calsync.authenticate_worker), at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.release_sync_events(p_worker text, p_outbox_ids uuid[],
                                                      p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.release_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.release_sync_events', p_now);
    UPDATE calsync.outbox_delivery
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'released by a stopping worker'
    WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.release_sync_events(text, uuid[], timestamptz) IS
    'Give back events a stopping worker holds; they are due again at once.';
