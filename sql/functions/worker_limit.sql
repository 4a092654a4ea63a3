-- The limits calsync_worker is held to (calsync.enforce_worker_limits, calsync.heartbeat_listener): the value
-- in calsync.settings, or the default here when the row is missing, so a deleted row never lifts a limit.
--   worker_max_lease          1 hour    the longest lease a claim or a renewal may take
--   worker_min_keep_dead      7 days    dead events are kept at least this long (prune_sync_history p_keep)
--   worker_min_keep_attempts  30 days   the attempts archive is kept at least this long (p_keep_attempts)
--   worker_min_dead_after     30 s      heartbeat silence before a worker counts as gone: the reaper's
--                                       p_dead_after, and before its id may be registered under another secret
CREATE OR REPLACE FUNCTION calsync.worker_limit(p_key text) RETURNS interval
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'worker_max_lease' THEN interval '1 hour'
                               WHEN 'worker_min_keep_dead' THEN interval '7 days'
                               WHEN 'worker_min_keep_attempts' THEN interval '30 days'
                               WHEN 'worker_min_dead_after' THEN interval '30 seconds' END)
$$;
COMMENT ON FUNCTION calsync.worker_limit(text) IS
    'A limit calsync_worker is held to: calsync.settings value of p_key, else its default (worker_max_lease 1 hour, worker_min_keep_dead 7 days, worker_min_keep_attempts 30 days, worker_min_dead_after 30 seconds).';
