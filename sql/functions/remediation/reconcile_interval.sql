-- An interval as reconciliation writes it: in UTC, to the minute.
CREATE OR REPLACE FUNCTION remediation.reconcile_interval(p_start timestamptz, p_end timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(to_char(p_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '?') || '–'
           || coalesce(to_char(p_end AT TIME ZONE 'UTC', 'HH24:MI'), '?') || ' UTC'
$$;
COMMENT ON FUNCTION remediation.reconcile_interval(timestamptz, timestamptz) IS 'An interval in UTC to the minute, for reconciliation''s findings.';
