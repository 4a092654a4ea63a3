-- A Cal.com key (or the base URL it is used with) is refused: 401/403, a route that does not exist, a redirect.
-- Not a failure of any appointment: the worker pauses the key and reports it here once per problem; it shows as
-- a critical alert in remediation.sync_health until calsync.clear_key_problem. key_ref names the key without
-- being it ('default', later a company), never the key itself.
CREATE OR REPLACE FUNCTION calsync.report_key_problem(p_worker text, p_key_ref text, p_category text, p_message text,
                                                     p_now timestamptz DEFAULT now()) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM calsync.authenticate_worker('calsync.report_key_problem', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.report_key_problem', p_now);
    INSERT INTO calsync.key_problems AS k (key_ref, category, message, first_seen, last_seen, reported_by)
    VALUES (p_key_ref, p_category, left(p_message, 2000), p_now, p_now, p_worker)
    ON CONFLICT (key_ref) WHERE resolved_at IS NULL DO UPDATE
        SET category = excluded.category, message = excluded.message, last_seen = excluded.last_seen,
            reported_by = excluded.reported_by;
END
$$;
COMMENT ON FUNCTION calsync.report_key_problem(text, text, text, text, timestamptz) IS
    'Record that Cal.com refuses a key or its base URL (one open row per key_ref); shown in remediation.sync_health.';
