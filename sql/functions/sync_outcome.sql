-- The one place an attempt's outcome is decided, from its category and the event's attempts so far:
-- skipped (nothing to do), synced (category OK), rate_limited (does not count as an attempt), paused (a problem
-- of the key or base URL, remediation.categories.scope = 'key': not an attempt either, the event stays due), retry
-- (the category is retryable in remediation.categories and attempts remain), else dead.
CREATE OR REPLACE FUNCTION calsync.sync_outcome(p_category text, p_skipped boolean, p_attempts integer,
                                               p_max_attempts integer) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN p_skipped THEN 'skipped'
        WHEN p_category = 'OK' THEN 'synced'
        WHEN p_category = 'RATE_LIMITED' THEN 'rate_limited'
        WHEN k.scope = 'key' THEN 'paused'
        WHEN coalesce(k.retryable, false) AND p_attempts < p_max_attempts THEN 'retry'
        ELSE 'dead' END
    FROM (SELECT) AS one LEFT JOIN remediation.categories k ON k.category = p_category
$$;
COMMENT ON FUNCTION calsync.sync_outcome(text, boolean, integer, integer) IS
    'An attempt''s outcome (skipped, synced, rate_limited, paused, retry, dead) from its category and the attempts so far.';
