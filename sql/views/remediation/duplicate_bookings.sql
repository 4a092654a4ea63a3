-- remediation: the views DBAs query. Each starts from its problem rows, read from partial indexes
-- (remediation.unsettled_appointments, the failing and unsynced indexes), and looks each one up, so it
-- stays fast on a large table (bench/views.py measures them on 1,000,000 appointments).
--
-- JIT: the planner prices each of those lookups like a disk read, so a finding with a few thousand rows is
-- priced past jit_above_cost, and PostgreSQL (jit = on by default) first compiles the query with LLVM:
-- 0.1 to 1.5 s of compiling for a query that runs in tens of milliseconds. The findings that look their
-- rows up therefore keep their query in a calsync.remediation_<name> view and read it through
-- remediation.<name>_without_jit(), a function that plans it with jit off (SET jit = off).

CREATE OR REPLACE VIEW calsync.remediation_duplicate_bookings AS
WITH seeds AS (  -- unsettled live appointments (from 30 days ago on) that share their booking
    SELECT a.id
    FROM remediation.unsettled_appointments u
    JOIN appointments a ON a.id = u.appointment_id
    WHERE a.status NOT IN ('cancelled', 'no_show') AND a.starts_at >= now() - interval '30 days'
      AND EXISTS (SELECT 1 FROM remediation.shared_bookings b WHERE b.appointment_id = a.id OFFSET 0)
), members AS (  -- and every appointment they share it with (the kept one is often settled)
    SELECT id FROM seeds
    UNION
    SELECT b.other_id FROM seeds JOIN remediation.shared_bookings b ON b.appointment_id = seeds.id
)
SELECT a.id AS appointment_id, a.customer_id, a.starts_at, a.service_id, a.calcom_booking_id, a.calcom_v2_booking_uid,
       a.status, a.calcom_sync_status,
       (array_agg(DISTINCT b.other_id ORDER BY b.other_id)) AS duplicates_of,
       string_agg(DISTINCT b.reason, '; ' ORDER BY b.reason) AS reason
FROM members m
JOIN appointments a ON a.id = m.id
JOIN remediation.shared_bookings b ON b.appointment_id = a.id
GROUP BY a.id;
COMMENT ON VIEW calsync.remediation_duplicate_bookings IS 'The query of remediation.duplicate_bookings, read through remediation.duplicate_bookings_without_jit().';
CREATE OR REPLACE FUNCTION remediation.duplicate_bookings_without_jit() RETURNS SETOF calsync.remediation_duplicate_bookings
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_duplicate_bookings
$$;
COMMENT ON FUNCTION remediation.duplicate_bookings_without_jit() IS 'The rows of remediation.duplicate_bookings, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.duplicate_bookings AS SELECT * FROM remediation.duplicate_bookings_without_jit();
COMMENT ON VIEW remediation.duplicate_bookings IS
    'Live appointments that are one booking twice (same customer, start and service, or same Cal.com booking), found from the unsettled ones (remediation.unsettled_appointments, from 30 days ago on) and listed with every appointment they share it with.';
COMMENT ON COLUMN remediation.duplicate_bookings.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.duplicate_bookings.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.duplicate_bookings.starts_at IS 'its start';
COMMENT ON COLUMN remediation.duplicate_bookings.service_id IS 'its service';
COMMENT ON COLUMN remediation.duplicate_bookings.calcom_booking_id IS 'its Cal.com booking id';
COMMENT ON COLUMN remediation.duplicate_bookings.calcom_v2_booking_uid IS 'its Cal.com booking uid';
COMMENT ON COLUMN remediation.duplicate_bookings.status IS 'its status';
COMMENT ON COLUMN remediation.duplicate_bookings.calcom_sync_status IS 'its sync status';
COMMENT ON COLUMN remediation.duplicate_bookings.duplicates_of IS 'the other live appointments it duplicates';
COMMENT ON COLUMN remediation.duplicate_bookings.reason IS 'what they share (several reasons separated by ; )';
