-- The webhook receiver's intervals from calsync.settings (webhook_park_base, webhook_park_cap, webhook_park_max),
-- with their defaults when a row is missing.
CREATE OR REPLACE FUNCTION calsync.webhook_setting(p_key text) RETURNS interval
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'webhook_park_base' THEN interval '2 seconds'
                               WHEN 'webhook_park_cap' THEN interval '5 minutes'
                               WHEN 'webhook_park_max' THEN interval '1 day' END)
$$;
COMMENT ON FUNCTION calsync.webhook_setting(text) IS
    'An interval setting of the webhook receiver (calsync.settings), else its default.';
