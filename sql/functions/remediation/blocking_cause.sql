-- A per-appointment answer for the worker and the runbook: it reads a building block of the findings
-- (sql/views/remediation/) filtered by the appointment, so the rule has one definition.

CREATE OR REPLACE FUNCTION remediation.blocking_cause(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.blocking_cause FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.blocking_cause(bigint) IS
    'What in the data keeps the appointment from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL (remediation.sync_diagnosis).';
