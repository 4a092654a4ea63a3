CREATE OR REPLACE FUNCTION remediation.operator() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('calsync.operator', true), ''), session_user::text)
$$;
COMMENT ON FUNCTION remediation.operator() IS 'Who runs the runbook: the session setting calsync.operator (the CLI sets the OS user), else the database user.';
