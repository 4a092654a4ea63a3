-- Diagnose the failures the app recorded, once, when they are recorded: the findings then read one row instead
-- of looking for the cause again (that lookup is what costs on a big table). The worker's failures carry
-- their category (sync_error_code) and are left alone. A diagnosis describes the failure as it was; a
-- fix shows in blocking_cause() (live), which is what the runbook's requeue step checks.
-- PL/pgSQL, not SQL: a SQL function with SET clauses is planned again on every call, and planning this one
-- (remediation.sync_diagnosis is a wide view) took 14 ms where running it takes under 2; every flagged
-- appointment's UPDATE paid it (a webhook conflict, a refusal, a failure). PL/pgSQL keeps the plan for the
-- session, and the generic plan from the first call (its five custom plans first would be planned again each,
-- and a receiver's session sees a handful of conflicts in all): one index probe by id either way (revision 0027).
CREATE OR REPLACE FUNCTION remediation.diagnose_failures(p_appointment_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_count integer;
BEGIN
    INSERT INTO remediation.failure_diagnoses AS f (appointment_id, category, blocking_cause, error_code, diagnosed_at)
    SELECT d.appointment_id, d.category, d.blocking_cause, a.sync_error_code, now()
    FROM appointments a
    JOIN remediation.sync_diagnosis d ON d.appointment_id = a.id
    WHERE a.id = ANY (p_appointment_ids) AND (a.calcom_sync_status = 'failed' OR a.requires_manual_review)
      AND NOT EXISTS (SELECT 1 FROM remediation.categories k WHERE k.category = a.sync_error_code AND k.origin = 'worker')
    ON CONFLICT (appointment_id) DO UPDATE
        SET category = EXCLUDED.category, blocking_cause = EXCLUDED.blocking_cause, error_code = EXCLUDED.error_code,
            diagnosed_at = EXCLUDED.diagnosed_at;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION remediation.diagnose_failures(bigint[]) IS
    'Record in remediation.failure_diagnoses why the app''s failures of these appointments happened (the worker''s failures are skipped); returns how many.';
