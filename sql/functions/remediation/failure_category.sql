-- A per-appointment answer for the worker and the runbook: it reads a building block of the findings
-- (sql/views/remediation/) filtered by the appointment, so the rule has one definition.

CREATE OR REPLACE FUNCTION remediation.failure_category(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.category FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.failure_category(bigint) IS
    'The category of a failing appointment''s sync: the worker''s verdict, else what blocks it in the data, else Cal.com''s message, else OTHER (remediation.sync_diagnosis).';
