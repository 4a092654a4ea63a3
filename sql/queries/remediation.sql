-- Queries of the operator commands (worker/ops/runbook.py, worker/ops/report.py).

-- name: remediation_health
SELECT health, success_rate_24h, attempted_24h, pending, failed, manual_review, dead_events, ancient_failures,
       stale_pending, integrity_issues, critical_alerts, alerts
FROM remediation.sync_health;

-- name: remediation_distribution
SELECT category, origin, failures, share_percent, recommended_action FROM remediation.error_distribution;

-- name: remediation_failed
SELECT appointment_id, customer_name, starts_at, status, category, retryable, last_error, error_code, attempts,
       first_failure_at, last_failure_at, outbox_status, recommended_action, runbook_step
FROM remediation.failed_syncs ORDER BY category, appointment_id;

-- name: remediation_run_start
INSERT INTO remediation.runs (run_id, operator, reason, steps, dry_run, before)
VALUES (%(run_id)s, remediation.operator(), %(reason)s, %(steps)s, %(dry_run)s, %(before)s::jsonb);

-- name: remediation_run_finish
UPDATE remediation.runs SET finished_at = now(), after = %(after)s::jsonb WHERE run_id = %(run_id)s;

-- name: remediation_last_run
SELECT run_id, started_at, finished_at, operator, reason, steps, before, after
FROM remediation.runs WHERE NOT dry_run AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1;

-- name: remediation_health_by_company
-- The dashboard's figures per company (revision 0023; an older database has no such column: status shows none).
SELECT companies FROM remediation.sync_health;
