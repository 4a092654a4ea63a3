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
