-- Changes the worker writes itself (calsync.writer = 'worker') and changes that come from Cal.com never enqueue:
-- no loops. A change comes from Cal.com when calsync's webhook functions write it (calsync.writer = 'calcom') or
-- when the write itself marks the row so (p_sync_origin: the sync_origin an INSERT gives, or an UPDATE sets to a
-- new value; the enqueue trigger passes NULL when an UPDATE leaves sync_origin as it was). A row that came from
-- Cal.com once is the app's like any other afterwards: the app's later cancel or move of it is synced (it used to
-- be dropped for ever, because the column keeps 'calcom'). Nor do a revision's backfills enqueue
-- (calsync.writer = 'backfill'): completing old rows must not rebook them at Cal.com, which would e-mail every
-- customer.
CREATE OR REPLACE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill', 'calcom')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;
COMMENT ON FUNCTION calsync.is_sync_loop(text) IS
    'true when a change must not be synced back: written by the worker or a backfill, applied from Cal.com (calsync.writer = calcom), or marked sync_origin = calcom by this very write.';
