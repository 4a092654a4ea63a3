-- The one place an attempt's outcome is decided, from its category and the event's attempts so far:
-- skipped (nothing to do), synced (category OK), rate_limited (does not count as an attempt), retry (the
-- category is retryable in remediation.categories and attempts remain), else dead.
CREATE OR REPLACE FUNCTION calsync.sync_outcome(p_category text, p_skipped boolean, p_attempts integer,
                                               p_max_attempts integer) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN p_skipped THEN 'skipped'
        WHEN p_category = 'OK' THEN 'synced'
        WHEN p_category = 'RATE_LIMITED' THEN 'rate_limited'
        WHEN coalesce((SELECT k.retryable FROM remediation.categories k WHERE k.category = p_category), false)
             AND p_attempts < p_max_attempts THEN 'retry'
        ELSE 'dead' END
$$;
COMMENT ON FUNCTION calsync.sync_outcome(text, boolean, integer, integer) IS
    'An attempt''s outcome (skipped, synced, rate_limited, retry, dead) from its category and the attempts so far.';
