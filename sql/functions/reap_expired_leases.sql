-- Leases go back to be retried now when they expired, or when the worker holding them stopped
-- heart-beating in calsync.outbox_listeners (it died): the next try looks the booking up at Cal.com
-- before creating, so nothing is booked twice. As calsync_worker, only at the database's time and after a
-- silence of at least worker_min_dead_after (calsync.enforce_worker_limits): a shorter one, or a time of
-- its own, would take the leases of workers that are alive.
CREATE OR REPLACE FUNCTION calsync.reap_expired_leases(p_now timestamptz DEFAULT now(),
                                                      p_dead_after interval DEFAULT '60 seconds') RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.enforce_worker_limits('calsync.reap_expired_leases', p_now,
                                          p_dead_after => coalesce(p_dead_after, interval '0'));
    UPDATE calsync.outbox_delivery d
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'lease taken back: the worker holding it stopped or stalled', last_category = 'NETWORK'
    WHERE d.status = 'running'
      AND (d.locked_until < p_now
           OR NOT EXISTS (SELECT 1 FROM calsync.outbox_listeners l
                          WHERE l.worker_id = d.locked_by AND l.heartbeat_at > p_now - p_dead_after));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.reap_expired_leases(timestamptz, interval) IS
    'Return events whose lease expired, or whose worker stopped heart-beating, to the queue, due now; returns how many.';
