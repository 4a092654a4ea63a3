-- Grants of the multi-company functions (revision 0023): the worker takes and pauses the shared rate limits and
-- reads the queue per company, through SECURITY DEFINER functions (calsync.rate_limits is the functions' own: a worker
-- changes it only by asking for slots or pausing a key; its figures come from calsync.rate_limit_stats).
REVOKE ALL ON calsync.rate_limits FROM calsync_worker;
GRANT EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, bigint[], integer, timestamptz),
    calsync.take_rate_slots(text, text, integer, integer, interval, interval, timestamptz),
    calsync.pause_rate_limit(text, text, double precision, text, timestamptz),
    calsync.queue_stats_by_company(timestamptz), calsync.rate_limit_stats(timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, bigint[], integer, timestamptz),
    calsync.take_rate_slots(text, text, integer, integer, interval, interval, timestamptz),
    calsync.pause_rate_limit(text, text, double precision, text, timestamptz),
    calsync.queue_stats_by_company(timestamptz), calsync.rate_limit_stats(timestamptz) FROM PUBLIC;
