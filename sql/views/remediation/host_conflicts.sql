-- remediation: the views DBAs query. Each starts from its problem rows, read from partial indexes
-- (remediation.unsettled_appointments, the failing and unsynced indexes), and looks each one up, so it
-- stays fast on a large table (bench/views.py measures them on 1,000,000 appointments).
--
-- JIT: the planner prices each of those lookups like a disk read, so a finding with a few thousand rows is
-- priced past jit_above_cost, and PostgreSQL (jit = on by default) first compiles the query with LLVM:
-- 0.1 to 1.5 s of compiling for a query that runs in tens of milliseconds. The findings that look their
-- rows up therefore keep their query in a calsync.remediation_<name> view and read it through
-- remediation.<name>_without_jit(), a function that plans it with jit off (SET jit = off).

CREATE OR REPLACE VIEW calsync.remediation_host_conflicts AS
SELECT DISTINCT ON (a.id, h.other_id)
       a.id AS appointment_id, h.other_id AS conflicts_with, h.host_key, h.busy, h.other_busy, a.starts_at,
       a.staff_id, h.other_staff_id, a.calcom_sync_status
FROM appointments a
CROSS JOIN LATERAL (SELECT * FROM remediation.host_overlaps h WHERE h.appointment_id = a.id OFFSET 0) AS h
WHERE a.calcom_sync_status IN ('failed', 'pending') AND a.ends_at >= now() AND a.status NOT IN ('cancelled', 'no_show')
ORDER BY a.id, h.other_id, lower(h.busy);
COMMENT ON VIEW calsync.remediation_host_conflicts IS 'The query of remediation.host_conflicts, read through remediation.host_conflicts_without_jit().';
CREATE OR REPLACE FUNCTION remediation.host_conflicts_without_jit() RETURNS SETOF calsync.remediation_host_conflicts
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_host_conflicts
$$;
COMMENT ON FUNCTION remediation.host_conflicts_without_jit() IS 'The rows of remediation.host_conflicts, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.host_conflicts AS SELECT * FROM remediation.host_conflicts_without_jit();
COMMENT ON VIEW remediation.host_conflicts IS
    'Live appointments not yet at Cal.com (sync pending or failed) and not over, whose host (Cal.com user, else staff row) is booked twice at once: Cal.com will refuse them; reschedule one of the two. Pairs already both at Cal.com are not listed (remediation.host_overlaps has every pair).';
COMMENT ON COLUMN remediation.host_conflicts.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.host_conflicts.conflicts_with IS 'the live appointment of the same host at an overlapping time';
COMMENT ON COLUMN remediation.host_conflicts.host_key IS 'the host: calcom_user:<id>, else staff:<uuid>';
COMMENT ON COLUMN remediation.host_conflicts.busy IS 'this appointment''s staff-required time that overlaps';
COMMENT ON COLUMN remediation.host_conflicts.other_busy IS 'the other appointment''s overlapping time';
COMMENT ON COLUMN remediation.host_conflicts.starts_at IS 'this appointment''s start';
COMMENT ON COLUMN remediation.host_conflicts.staff_id IS 'this appointment''s staff row';
COMMENT ON COLUMN remediation.host_conflicts.other_staff_id IS 'the other appointment''s staff row (another row of one person counts)';
COMMENT ON COLUMN remediation.host_conflicts.calcom_sync_status IS 'this appointment''s sync status: pending or failed';
