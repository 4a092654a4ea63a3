-- The dashboard, as one row. Thresholds are calsync.settings (health_*):
--   CRITICAL: failed syncs >= health_failed_critical (default 10), or the 24 h success rate is below
--             health_success_rate_critical (default 0.8) with at least 10 attempts;
--             or Cal.com refuses a key (calsync.key_problems: bad key, wrong base URL), or a company has no
--             usable key of its own nor the fallback (KEY_MISSING: its syncs are held);
--   DEGRADED: any failed sync, dead event, failure older than 24 h, or pending sync older than 1 h;
--   HEALTHY:  none of these.
CREATE OR REPLACE VIEW remediation.sync_health AS
WITH t AS (
    SELECT
        (SELECT value::int FROM calsync.settings WHERE key = 'health_failed_critical') AS failed_critical,
        (SELECT value::numeric FROM calsync.settings WHERE key = 'health_success_rate_critical') AS rate_critical
), n AS MATERIALIZED (  -- each count once (inlined, every use would count again)
    SELECT
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show'))::int AS pending,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed')::int AS failed,
        (SELECT count(*) FROM appointments WHERE requires_manual_review)::int AS manual_review,
        (SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'dead')::int AS dead_events,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed'
            AND coalesce(last_sync_attempt_at, manual_review_flagged_at, updated_at) < now() - interval '24 hours')::int
            AS ancient_failures,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show')
            AND coalesce(last_sync_attempt_at, created_at) < now() - interval '1 hour')::int AS stale_pending,
        h.attempted_24h,
        h.synced_24h,
        (SELECT count(*) FROM calsync.integrity_issues WHERE resolved_at IS NULL)::int AS integrity_issues
    FROM (  -- one index-only pass (remediation_appointments_last_sync_attempt_index includes the status)
        SELECT count(*)::int AS attempted_24h, count(*) FILTER (WHERE calcom_sync_status = 'synced')::int AS synced_24h
        FROM appointments WHERE last_sync_attempt_at > now() - interval '24 hours'
    ) AS h
), a AS (
    SELECT n.*, t.*,
           CASE WHEN n.attempted_24h > 0 THEN round(100.0 * n.synced_24h / n.attempted_24h, 2) END AS success_rate_24h,
           array_remove(ARRAY[
               CASE WHEN n.failed >= t.failed_critical
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs (threshold ' || t.failed_critical || ')') END,
               CASE WHEN n.attempted_24h >= 10 AND n.synced_24h < t.rate_critical * n.attempted_24h
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'success_rate', 'count', n.attempted_24h - n.synced_24h,
                         'message', 'success rate ' || round(100.0 * n.synced_24h / n.attempted_24h, 2) || ' % over 24 h (threshold '
                                    || round(100 * t.rate_critical) || ' %)') END,
               CASE WHEN n.failed > 0 AND n.failed < t.failed_critical
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs') END,
               CASE WHEN n.dead_events > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'dead_events', 'count', n.dead_events,
                         'message', n.dead_events || ' outbox events given up on') END,
               CASE WHEN n.ancient_failures > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'ancient_failures', 'count', n.ancient_failures,
                         'message', n.ancient_failures || ' failures older than 24 h') END,
               CASE WHEN n.stale_pending > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'stale_pending', 'count', n.stale_pending,
                         'message', n.stale_pending || ' syncs pending for more than 1 h') END
           ], NULL) || ARRAY(  -- a refused key pauses every sync that uses it
               SELECT jsonb_build_object('severity', 'critical',
                      'alert', CASE WHEN k.category = 'KEY_MISSING' THEN 'key_missing' ELSE 'key_refused' END,
                      'count', 1, 'key_ref', k.key_ref,
                      'message', CASE WHEN k.category = 'KEY_MISSING'
                                      THEN 'No usable Cal.com key for ' || k.key_ref || ' since '
                                           || to_char(k.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                                           || ' UTC: ' || k.message || '; its syncs are held (no attempt counted) '
                                           || 'and resume by themselves once the key file is there'
                                      ELSE 'Cal.com refuses key ' || k.key_ref || ' (' || k.category || ') since '
                                           || to_char(k.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                                           || ' UTC: ' || k.message
                                           || '; its syncs wait and resume by themselves once it works' END)
               FROM calsync.key_problems k WHERE k.resolved_at IS NULL ORDER BY k.key_ref) AS alerts
    FROM n, t
), per_company AS (  -- the figures per company (outbox events carry theirs since revision 0023)
    SELECT x.company_id,
           sum(x.pending)::int AS pending, sum(x.failed)::int AS failed, sum(x.depth)::int AS outbox_depth,
           sum(x.dead)::int AS dead_events, sum(x.held)::int AS held,
           round(max(x.oldest_pending_s), 1) AS oldest_pending_s
    FROM (
        SELECT a.company_id, count(*) FILTER (WHERE a.calcom_sync_status = 'pending') AS pending,
               count(*) FILTER (WHERE a.calcom_sync_status = 'failed') AS failed,
               0 AS depth, 0 AS dead, 0 AS held, NULL::numeric AS oldest_pending_s
        FROM appointments a
        WHERE a.calcom_sync_status IN ('pending', 'failed') AND a.status NOT IN ('cancelled', 'no_show')
        GROUP BY a.company_id
        UNION ALL
        SELECT o.company_id, 0, 0, count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
               count(*) FILTER (WHERE d.status = 'dead'), count(*) FILTER (WHERE d.status = 'retry' AND k.scope = 'key'),
               extract(epoch FROM now() - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead'))
        FROM calsync.outbox o
        LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
        LEFT JOIN remediation.categories k ON k.category = d.last_category
        GROUP BY o.company_id
    ) AS x
    GROUP BY x.company_id
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical') THEN 'CRITICAL'
            WHEN cardinality(a.alerts) > 0 THEN 'DEGRADED' ELSE 'HEALTHY' END AS health,
       a.success_rate_24h, a.attempted_24h, a.pending, a.failed, a.manual_review, a.dead_events,
       a.ancient_failures, a.stale_pending, a.integrity_issues,
       (SELECT count(*) FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical')::int AS critical_alerts,
       to_jsonb(a.alerts) AS alerts,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'company_id', c.company_id, 'pending', c.pending, 'failed', c.failed,
                    'outbox_depth', c.outbox_depth, 'dead_events', c.dead_events, 'held', c.held,
                    'oldest_pending_s', c.oldest_pending_s,
                    'key_problem', (SELECT k.category FROM calsync.key_problems k
                                    WHERE k.resolved_at IS NULL AND k.key_ref = 'company:' || c.company_id))
                ORDER BY c.company_id), '[]'::jsonb)
        FROM per_company c) AS companies
FROM a;
COMMENT ON VIEW remediation.sync_health IS
    'The sync dashboard in one row. CRITICAL: failed >= health_failed_critical (10), 24 h success rate < health_success_rate_critical (80 %) or a key refused by Cal.com; DEGRADED: any failure, dead event, failure older than 24 h or pending older than 1 h; else HEALTHY.';
COMMENT ON COLUMN remediation.sync_health.health IS 'HEALTHY, DEGRADED or CRITICAL (thresholds in the view comment and calsync.settings)';
COMMENT ON COLUMN remediation.sync_health.success_rate_24h IS 'percent of appointments attempted in the last 24 h that are synced';
COMMENT ON COLUMN remediation.sync_health.attempted_24h IS 'appointments with a sync attempt in the last 24 h';
COMMENT ON COLUMN remediation.sync_health.pending IS 'live appointments waiting to sync';
COMMENT ON COLUMN remediation.sync_health.failed IS 'appointments whose sync failed';
COMMENT ON COLUMN remediation.sync_health.manual_review IS 'appointments flagged for a person';
COMMENT ON COLUMN remediation.sync_health.dead_events IS 'outbox events given up on';
COMMENT ON COLUMN remediation.sync_health.ancient_failures IS 'failed syncs whose last attempt is older than 24 h';
COMMENT ON COLUMN remediation.sync_health.stale_pending IS 'syncs pending for more than 1 h';
COMMENT ON COLUMN remediation.sync_health.integrity_issues IS 'open rows of calsync.integrity_issues';
COMMENT ON COLUMN remediation.sync_health.critical_alerts IS 'how many alerts are critical';
COMMENT ON COLUMN remediation.sync_health.alerts IS 'active alerts: [{severity, alert, count, message}]';
COMMENT ON COLUMN remediation.sync_health.companies IS
    'per company: [{company_id, pending, failed, outbox_depth, dead_events, held, oldest_pending_s, key_problem}]';
