-- A live worker keeps the leases of the events it is still working on (a slow Cal.com must not make a
-- healthy worker lose them); a dead one stops renewing and its leases run out.
CREATE OR REPLACE FUNCTION calsync.renew_leases(p_worker text, p_outbox_ids uuid[], p_lease interval,
                                               p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH renewed AS (
        UPDATE calsync.outbox_delivery SET locked_until = p_now + p_lease
        WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids)
        RETURNING 1
    )
    SELECT count(*)::int FROM renewed
$$;
COMMENT ON FUNCTION calsync.renew_leases(text, uuid[], interval, timestamptz) IS
    'Extend the leases a worker still holds on events it is working on; returns how many it still holds.';
