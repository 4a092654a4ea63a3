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
