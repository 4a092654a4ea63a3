-- remediation: the views DBAs query. Each starts from its problem rows, read from partial indexes
-- (remediation.unsettled_appointments, the failing and unsynced indexes), and looks each one up, so it
-- stays fast on a large table (bench/views.py measures them on 1,000,000 appointments).
--
-- JIT: the planner prices each of those lookups like a disk read, so a finding with a few thousand rows is
-- priced past jit_above_cost, and PostgreSQL (jit = on by default) first compiles the query with LLVM:
-- 0.1 to 1.5 s of compiling for a query that runs in tens of milliseconds. The findings that look their
-- rows up therefore keep their query in a calsync.remediation_<name> view and read it through
-- remediation.<name>_without_jit(), a function that plans it with jit off (SET jit = off).

CREATE OR REPLACE VIEW calsync.remediation_failed_syncs AS
SELECT a.id AS appointment_id,
       a.customer_id,
       (SELECT c.name FROM customers c WHERE c.id = a.customer_id) AS customer_name,
       a.starts_at,
       a.status,
       f.category,
       k.retryable,
       coalesce(d.last_error, a.sync_error_message) AS last_error,
       a.sync_error_code AS error_code,
       a.sync_error_detail AS error_detail,
       greatest(a.sync_attempt_count, coalesce(d.attempts, 0)) AS attempts,
       coalesce(att.first_failure_at, a.manual_review_flagged_at, a.last_sync_attempt_at) AS first_failure_at,
       coalesce(att.last_failure_at, a.last_sync_attempt_at, a.manual_review_flagged_at) AS last_failure_at,
       a.requires_manual_review,
       d.status AS outbox_status,
       k.recommended_action,
       k.runbook_step
FROM appointments a
LEFT JOIN remediation.categories w ON w.category = a.sync_error_code AND w.origin = 'worker'
LEFT JOIN remediation.failure_diagnoses fd ON fd.appointment_id = a.id
-- the worker's verdict, else the diagnosis made when the app recorded the failure, else diagnose now
-- (OFFSET 0: once per row, although the category is used twice)
CROSS JOIN LATERAL (SELECT coalesce(w.category, fd.category, remediation.failure_category(a.id)) AS category OFFSET 0) f
LEFT JOIN remediation.categories k ON k.category = f.category
LEFT JOIN LATERAL (
    SELECT d.status, d.attempts, d.last_error FROM calsync.outbox_delivery d
    WHERE d.aggregateid = a.id::text ORDER BY d.created_at DESC LIMIT 1) AS d ON true
LEFT JOIN LATERAL (
    SELECT min(t.created_at) AS first_failure_at, max(t.created_at) AS last_failure_at
    FROM calsync.sync_attempts t WHERE t.appointment_id = a.id AND t.category <> 'OK') AS att ON true
WHERE a.calcom_sync_status = 'failed' OR a.requires_manual_review;
COMMENT ON VIEW calsync.remediation_failed_syncs IS 'The query of remediation.failed_syncs, read through remediation.failed_syncs_without_jit().';
CREATE OR REPLACE FUNCTION remediation.failed_syncs_without_jit() RETURNS SETOF calsync.remediation_failed_syncs
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_failed_syncs
$$;
COMMENT ON FUNCTION remediation.failed_syncs_without_jit() IS 'The rows of remediation.failed_syncs, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.failed_syncs AS SELECT * FROM remediation.failed_syncs_without_jit();
COMMENT ON VIEW remediation.failed_syncs IS
    'One row per appointment whose sync is failing (calcom_sync_status failed, or flagged for manual review), with why and what to do.';
COMMENT ON COLUMN remediation.failed_syncs.appointment_id IS 'the failing appointment';
COMMENT ON COLUMN remediation.failed_syncs.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.failed_syncs.customer_name IS 'the customer''s name';
COMMENT ON COLUMN remediation.failed_syncs.starts_at IS 'when the appointment starts';
COMMENT ON COLUMN remediation.failed_syncs.status IS 'the appointment''s status';
COMMENT ON COLUMN remediation.failed_syncs.category IS 'why it fails (remediation.categories): the worker''s verdict, else the diagnosis made when the failure was recorded (remediation.failure_diagnoses), else what the data shows now';
COMMENT ON COLUMN remediation.failed_syncs.retryable IS 'true when retrying can succeed without a change (a transient cause)';
COMMENT ON COLUMN remediation.failed_syncs.last_error IS 'the last error in full (Cal.com''s answer, or the worker''s guard)';
COMMENT ON COLUMN remediation.failed_syncs.error_code IS 'sync_error_code: a category, or the app''s HTTP_<status>';
COMMENT ON COLUMN remediation.failed_syncs.error_detail IS 'the last error as structure: status, code, message, field, request id';
COMMENT ON COLUMN remediation.failed_syncs.attempts IS 'sync attempts so far';
COMMENT ON COLUMN remediation.failed_syncs.first_failure_at IS 'the first failed attempt (or when it was flagged)';
COMMENT ON COLUMN remediation.failed_syncs.last_failure_at IS 'the last failed attempt';
COMMENT ON COLUMN remediation.failed_syncs.requires_manual_review IS 'flagged for a person';
COMMENT ON COLUMN remediation.failed_syncs.outbox_status IS 'the delivery of its latest outbox event: retry, running or dead (NULL: none pending)';
COMMENT ON COLUMN remediation.failed_syncs.recommended_action IS 'what to do, in words';
COMMENT ON COLUMN remediation.failed_syncs.runbook_step IS 'the `calsync remediate --only` step that fixes it (NULL: a person decides)';
