-- Per-appointment answers for the worker and the runbook. Each reads one building block of
-- sql/views/remediation_diagnosis.sql filtered by the appointment, so the rule has one definition.

CREATE OR REPLACE FUNCTION remediation.host_conflicts_of(p_appointment_id bigint)
RETURNS TABLE (other_id bigint, host_key text, busy tstzrange, other_busy tstzrange)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT ON (h.other_id) h.other_id, h.host_key, h.busy, h.other_busy
    FROM remediation.host_overlaps h
    WHERE h.appointment_id = p_appointment_id
    ORDER BY h.other_id, lower(h.busy)
$$;
COMMENT ON FUNCTION remediation.host_conflicts_of(bigint) IS
    'Live appointments of the same host whose staff-required time overlaps this appointment''s (remediation.host_overlaps).';

CREATE OR REPLACE FUNCTION remediation.blocking_cause(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.blocking_cause FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.blocking_cause(bigint) IS
    'What in the data keeps the appointment from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL (remediation.sync_diagnosis).';

CREATE OR REPLACE FUNCTION remediation.failure_category(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.category FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.failure_category(bigint) IS
    'The category of a failing appointment''s sync: the worker''s verdict, else what blocks it in the data, else Cal.com''s message, else OTHER (remediation.sync_diagnosis).';
