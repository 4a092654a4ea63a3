-- The queue's depth for the worker's metrics, without giving it the delivery table (whose locked_by names
-- every other worker): undelivered events, dead ones, and the age of the oldest undelivered one.
CREATE OR REPLACE FUNCTION calsync.queue_stats(p_now timestamptz DEFAULT now())
RETURNS TABLE (depth bigint, dead bigint, oldest_pending_s numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
           count(*) FILTER (WHERE d.status = 'dead'),
           coalesce(extract(epoch FROM p_now - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead')), 0)
    FROM calsync.outbox o LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
$$;
COMMENT ON FUNCTION calsync.queue_stats(timestamptz) IS
    'Undelivered events, dead events and the oldest undelivered event''s age in seconds (the worker''s metrics).';
