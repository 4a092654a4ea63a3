-- The queue per company, for the worker's metrics and `calsync status` (the worker cannot read the delivery
-- table): undelivered events, those leased now, dead ones, those held because the company's key is missing or
-- refused (calsync.key_problems, last category of a paused try), and the oldest undelivered event's age.
CREATE OR REPLACE FUNCTION calsync.queue_stats_by_company(p_now timestamptz DEFAULT now())
RETURNS TABLE (company_id bigint, depth bigint, running bigint, dead bigint, held bigint,
               oldest_pending_s numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.company_id,
           count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
           count(*) FILTER (WHERE d.status = 'running'),
           count(*) FILTER (WHERE d.status = 'dead'),
           count(*) FILTER (WHERE d.status = 'retry' AND k.scope = 'key'),
           coalesce(extract(epoch FROM p_now - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead')), 0)
    FROM calsync.outbox o
    LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
    LEFT JOIN remediation.categories k ON k.category = d.last_category
    GROUP BY o.company_id
    ORDER BY o.company_id
$$;
COMMENT ON FUNCTION calsync.queue_stats_by_company(timestamptz) IS
    'Per company: undelivered, leased, dead and held (key missing or refused) events, and the oldest undelivered event''s age in seconds.';
