-- Changes the worker writes itself (calsync.writer = 'worker') and changes that came from Cal.com
-- (sync_origin = 'calcom') never enqueue: no loops. Nor do a revision's backfills (calsync.writer =
-- 'backfill'): completing old rows must not rebook them at Cal.com, which would e-mail every customer.
CREATE OR REPLACE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;
COMMENT ON FUNCTION calsync.is_sync_loop(text) IS
    'true when a change must not be synced back: written by the worker, or originating from Cal.com.';
