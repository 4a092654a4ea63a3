-- Named queries of `calsync reconcile` (worker/ops/reconcile.py).

-- name: reconcile_event_types
SELECT t FROM remediation.reconcile_event_types() AS t;

-- name: reconcile_ours
SELECT uid, unsettled FROM remediation.reconcile_ours(%(since)s, %(until)s);

-- name: reconcile_record
SELECT to_jsonb(f)::text FROM remediation.reconcile_bookings(%(run_id)s, %(bookings)s::jsonb, %(since)s, %(until)s,
                                                             %(dry_run)s) AS f;

-- name: reconcile_repair
SELECT * FROM remediation.repair_reconcile_findings(p_dry_run => false, p_reason => %(reason)s, p_run_id => %(run_id)s);

-- name: reconcile_cancellations
SELECT to_jsonb(f)::text FROM remediation.reconcile_cancellations() AS f;

-- name: reconcile_record_cancellation
SELECT * FROM remediation.record_reconcile_cancellation(%(run_id)s, %(finding_id)s, %(reason)s, %(cancelled)s,
                                                        %(http_status)s, %(message)s);

-- name: reconcile_undo
SELECT * FROM remediation.undo_reconcile(%(run_id)s, %(reason)s);

-- name: reconcile_run_is_reconcile
SELECT EXISTS (SELECT 1 FROM remediation.runs WHERE run_id = %(run_id)s AND 'reconcile' = ANY (steps));
