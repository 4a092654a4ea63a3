-- What calsync_worker may ask of the delivery functions, checked first thing in each; an admin
-- (calsync.caller_is_admin) is not bound. Every refusal is an error with a SQLSTATE and constraint name of
-- its own, never a silent clamp (a misconfigured worker fails at its first call, not by losing leases later):
--   CS013 worker_time_is_now         p_now must be now(): no lease, retry or retention stretched by a clock of its own
--   CS010 worker_lease_within_max    0 < lease <= worker_max_lease (claim, renew)
--   CS011 worker_keeps_history       p_keep >= worker_min_keep_dead, p_keep_attempts >= worker_min_keep_attempts
--   CS012 worker_reaps_the_silent    p_dead_after >= worker_min_dead_after (else it reaps live workers' leases)
-- A limit passed as NULL is not checked; callers pass coalesce(x, '0') where a NULL would mean "no limit".
CREATE OR REPLACE FUNCTION calsync.enforce_worker_limits(p_function text, p_now timestamptz,
                                                        p_lease interval DEFAULT NULL,
                                                        p_keep interval DEFAULT NULL,
                                                        p_keep_attempts interval DEFAULT NULL,
                                                        p_dead_after interval DEFAULT NULL) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_limit interval;
BEGIN
    IF calsync.caller_is_admin() THEN
        RETURN;
    END IF;
    IF p_now IS DISTINCT FROM now() THEN
        RAISE EXCEPTION '%: calsync_worker works at the database''s time: p_now must be now() (%), not %',
                        p_function, now(), coalesce(p_now::text, 'NULL')
            USING ERRCODE = 'CS013', CONSTRAINT = 'worker_time_is_now',
                  HINT = 'Leave p_now out (it defaults to now()); only an owner or a superuser may pass another time.';
    END IF;
    IF p_lease IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_max_lease');
        IF p_lease <= interval '0' OR p_lease > v_limit THEN
            RAISE EXCEPTION '%: a lease of % is refused: calsync_worker leases for more than 0 and at most % (calsync.settings worker_max_lease)',
                            p_function, p_lease, v_limit
                USING ERRCODE = 'CS010', CONSTRAINT = 'worker_lease_within_max',
                      HINT = 'Lease for a few minutes (CALSYNC_LEASE_S) and renew while the work runs.';
        END IF;
    END IF;
    IF p_keep IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_keep_dead');
        IF p_keep < v_limit THEN
            RAISE EXCEPTION '%: keeping dead events for % is refused: calsync_worker keeps them at least % (calsync.settings worker_min_keep_dead)',
                            p_function, p_keep, v_limit
                USING ERRCODE = 'CS011', CONSTRAINT = 'worker_keeps_history',
                      HINT = 'Call calsync.prune_sync_history() with its defaults; an owner or a superuser may prune sooner.';
        END IF;
    END IF;
    IF p_keep_attempts IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_keep_attempts');
        IF p_keep_attempts < v_limit THEN
            RAISE EXCEPTION '%: keeping sync attempts for % is refused: calsync_worker keeps them at least % (calsync.settings worker_min_keep_attempts)',
                            p_function, p_keep_attempts, v_limit
                USING ERRCODE = 'CS011', CONSTRAINT = 'worker_keeps_history',
                      HINT = 'Call calsync.prune_sync_history() with its defaults; an owner or a superuser may prune sooner.';
        END IF;
    END IF;
    IF p_dead_after IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_dead_after');
        IF p_dead_after < v_limit THEN
            RAISE EXCEPTION '%: reaping the leases of workers silent for % is refused: calsync_worker waits at least % (calsync.settings worker_min_dead_after)',
                            p_function, p_dead_after, v_limit
                USING ERRCODE = 'CS012', CONSTRAINT = 'worker_reaps_the_silent',
                      HINT = 'A live worker heart-beats every few seconds; reap after a silence of several heartbeats.';
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION calsync.enforce_worker_limits(text, timestamptz, interval, interval, interval, interval) IS
    'Refuse what calsync_worker may not ask (not now(): CS013; lease beyond worker_max_lease: CS010; retention below the floors: CS011; reaping before worker_min_dead_after: CS012); admins are not bound.';
