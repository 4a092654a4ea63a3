-- The shared rate limits, one row per key (never the key itself: key_ref is 'default' or 'company:<id>'):
-- slots handed out, batches that had to wait and for how long in total, batches refused (the schedule was full
-- beyond the worker's wait), pauses (429s) and whether the key is paused now.
CREATE OR REPLACE FUNCTION calsync.rate_limit_stats(p_now timestamptz DEFAULT now())
RETURNS TABLE (key_ref text, rate_limit bigint, rate_window_s double precision, granted bigint, delayed bigint,
               refused bigint, wait_s double precision, pauses bigint, paused_for_s double precision,
               last_pause_reason text, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.key_ref, r.rate_limit, extract(epoch FROM r.rate_window)::double precision, r.granted, r.delayed,
           r.refused, r.wait_s, r.pauses,
           greatest(0, extract(epoch FROM coalesce(r.paused_until, p_now) - p_now))::double precision,
           r.last_pause_reason, r.updated_at
    FROM calsync.rate_limits r
    ORDER BY r.key_ref
$$;
COMMENT ON FUNCTION calsync.rate_limit_stats(timestamptz) IS
    'The shared per-key rate limits: slots granted, waits, refusals, 429 pauses and the pause left (key_ref only, never a key).';
