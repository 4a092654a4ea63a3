-- The webhook receiver's intervals from calsync.settings (webhook_park_base, webhook_park_cap, webhook_park_max),
-- with their defaults when a row is missing.
-- PL/pgSQL, not SQL: a SQL function with a SET clause is never inlined and is planned again in every transaction
-- that calls it; PL/pgSQL keeps the plan for the session (revision 0027).
CREATE OR REPLACE FUNCTION calsync.webhook_setting(p_key text) RETURNS interval
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    RETURN coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'webhook_park_base' THEN interval '2 seconds'
                               WHEN 'webhook_park_cap' THEN interval '5 minutes'
                               WHEN 'webhook_park_max' THEN interval '1 day' END);
END
$$;
COMMENT ON FUNCTION calsync.webhook_setting(text) IS
    'An interval setting of the webhook receiver (calsync.settings), else its default.';
