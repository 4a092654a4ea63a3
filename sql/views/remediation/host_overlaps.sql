-- A building block of the findings, one row per appointment (or pair) and written so that a filter on
-- appointment_id reaches the indexes: the per-appointment functions (sql/functions/remediation/) read it
-- with such a filter, the findings views drive it from the partial indexes over the problem rows.

-- Pairs of live appointments of one host (the Cal.com user, else the staff row: one person on two staff
-- rows is one host) whose staff-required time overlaps. Candidates come from the index on
-- (staff_id, starts_at) (an appointment is assumed to last less than a day) and must overlap as a whole
-- before their phases are compared. The OFFSET 0 subqueries stay per appointment: the planner cannot trade
-- them for a hash of the whole table.
CREATE OR REPLACE VIEW remediation.host_overlaps AS
SELECT a.id AS appointment_id, b.id AS other_id, i.host_key, i.busy, o.busy AS other_busy,
       a.staff_id, b.staff_id AS other_staff_id, a.starts_at, a.ends_at, a.calcom_sync_status
FROM appointments a
JOIN staff s ON s.id = a.staff_id
CROSS JOIN LATERAL (
    SELECT b.id, b.staff_id
    FROM staff s2
    JOIN appointments b ON b.staff_id = s2.id
    WHERE calsync.host_key(s2.calcom_user_id, s2.id) = calsync.host_key(s.calcom_user_id, s.id)
      AND b.starts_at > a.starts_at - interval '1 day' AND b.starts_at < a.ends_at AND b.ends_at > a.starts_at
      AND b.id <> a.id AND b.status NOT IN ('cancelled', 'no_show')
    OFFSET 0
) AS b
CROSS JOIN LATERAL (
    SELECT x.host_key, x.busy FROM calsync.appointment_busy_intervals x WHERE x.appointment_id = a.id OFFSET 0
) AS i
CROSS JOIN LATERAL (
    SELECT x.busy FROM calsync.appointment_busy_intervals x WHERE x.appointment_id = b.id AND x.busy && i.busy OFFSET 0
) AS o
WHERE a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW remediation.host_overlaps IS
    'Every pair of live appointments whose host is booked twice at once (both directions; a row per overlapping phase). Filter by appointment_id; remediation.host_conflicts lists the ones that block a sync.';
COMMENT ON COLUMN remediation.host_overlaps.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.host_overlaps.other_id IS 'the live appointment of the same host at an overlapping time';
COMMENT ON COLUMN remediation.host_overlaps.host_key IS 'the host: calcom_user:<id>, else staff:<uuid>';
COMMENT ON COLUMN remediation.host_overlaps.busy IS 'this appointment''s staff-required time that overlaps';
COMMENT ON COLUMN remediation.host_overlaps.other_busy IS 'the other appointment''s overlapping time';
COMMENT ON COLUMN remediation.host_overlaps.staff_id IS 'this appointment''s staff row';
COMMENT ON COLUMN remediation.host_overlaps.other_staff_id IS 'the other appointment''s staff row';
COMMENT ON COLUMN remediation.host_overlaps.starts_at IS 'this appointment''s start';
COMMENT ON COLUMN remediation.host_overlaps.ends_at IS 'this appointment''s end';
COMMENT ON COLUMN remediation.host_overlaps.calcom_sync_status IS 'this appointment''s sync status';
