-- A per-appointment answer for the worker and the runbook: it reads a building block of the findings
-- (sql/views/remediation/) filtered by the appointment, so the rule has one definition.

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
