-- A live worker keeps the leases of the events it is still working on (a slow Cal.com must not make a
-- healthy worker lose them); a dead one stops renewing and its leases run out. Only its own leases
-- (calsync.authenticate_worker), and as calsync_worker for at most worker_max_lease at the database's time
-- (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.renew_leases(p_worker text, p_outbox_ids uuid[], p_lease interval,
                                               p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.renew_leases', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.renew_leases', p_now, p_lease => coalesce(p_lease, interval '0'));
    UPDATE calsync.outbox_delivery SET locked_until = p_now + p_lease
    WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.renew_leases(text, uuid[], interval, timestamptz) IS
    'Extend the leases a worker still holds on events it is working on; returns how many it still holds.';
