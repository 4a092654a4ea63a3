-- remediation: the views DBAs query. Each starts from its problem rows, read from partial indexes
-- (remediation.unsettled_appointments, the failing and unsynced indexes), and looks each one up, so it
-- stays fast on a large table (bench/views.py measures them on 1,000,000 appointments).
--
-- JIT: the planner prices each of those lookups like a disk read, so a finding with a few thousand rows is
-- priced past jit_above_cost, and PostgreSQL (jit = on by default) first compiles the query with LLVM:
-- 0.1 to 1.5 s of compiling for a query that runs in tens of milliseconds. The findings that look their
-- rows up therefore keep their query in a calsync.remediation_<name> view and read it through
-- remediation.<name>_without_jit(), a function that plans it with jit off (SET jit = off).

CREATE OR REPLACE VIEW calsync.remediation_composites_without_phases AS
SELECT a.id AS appointment_id, a.service_id, s.name AS service_name, a.starts_at, a.status, a.staff_id,
       calsync.segments_problem(s.segments) AS segments_problem
FROM remediation.unsettled_appointments u
-- OFFSET 0: each unsettled appointment is looked up; with thousands of them a plain join became a hash join
-- over every appointment of the last 30 days (0.28 s on 1,000,000 with 0.5 % failing)
CROSS JOIN LATERAL (SELECT x.id, x.service_id, x.starts_at, x.status, x.staff_id, x.is_composite
                    FROM appointments x WHERE x.id = u.appointment_id OFFSET 0) AS a
JOIN services s ON s.id = a.service_id
WHERE a.is_composite AND a.status NOT IN ('cancelled', 'no_show') AND a.starts_at >= now() - interval '30 days'
  AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id);
COMMENT ON VIEW calsync.remediation_composites_without_phases IS 'The query of remediation.composites_without_phases, read through remediation.composites_without_phases_without_jit().';
CREATE OR REPLACE FUNCTION remediation.composites_without_phases_without_jit() RETURNS SETOF calsync.remediation_composites_without_phases
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_composites_without_phases
$$;
COMMENT ON FUNCTION remediation.composites_without_phases_without_jit() IS 'The rows of remediation.composites_without_phases, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.composites_without_phases AS SELECT * FROM remediation.composites_without_phases_without_jit();
COMMENT ON VIEW remediation.composites_without_phases IS
    'Unsettled live composite appointments (remediation.unsettled_appointments, from 30 days ago on) that have no phases, so they cannot be synced. Since revision 0011 a composite gets its phases when it is saved.';
COMMENT ON COLUMN remediation.composites_without_phases.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.composites_without_phases.service_id IS 'its composite service';
COMMENT ON COLUMN remediation.composites_without_phases.service_name IS 'the service''s name';
COMMENT ON COLUMN remediation.composites_without_phases.starts_at IS 'its start';
COMMENT ON COLUMN remediation.composites_without_phases.status IS 'its status';
COMMENT ON COLUMN remediation.composites_without_phases.staff_id IS 'its staff row (NULL: nobody to do the work)';
COMMENT ON COLUMN remediation.composites_without_phases.segments_problem IS 'why phases cannot be derived from the service, or NULL when they can';
