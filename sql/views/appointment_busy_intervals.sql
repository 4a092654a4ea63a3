-- The staff-required time of every live appointment with a host: its phases with staff_required when it
-- has phases, else [starts_at, ends_at). Processing gaps are free, so two perms can interleave.
-- Written per appointment (LATERAL), so a filter on appointment_id reaches the primary key and the
-- phases index instead of computing every appointment's time.
CREATE OR REPLACE VIEW calsync.appointment_busy_intervals AS
SELECT a.id AS appointment_id,
       x.phase_id,
       a.staff_id,
       calsync.host_key(s.calcom_user_id, a.staff_id) AS host_key,
       x.busy
FROM appointments a
JOIN staff s ON s.id = a.staff_id
CROSS JOIN LATERAL (
    SELECT p.id AS phase_id, tstzrange(p.start_time, p.end_time, '[)') AS busy
    FROM appointment_phases p
    WHERE p.appointment_id = a.id AND p.staff_required AND p.end_time > p.start_time
    UNION ALL
    SELECT NULL::bigint, tstzrange(a.starts_at, a.ends_at, '[)')
    WHERE a.ends_at > a.starts_at AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
) AS x
WHERE a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW calsync.appointment_busy_intervals IS
    'Staff-required time of live appointments: phases with staff_required, else the whole appointment.';
COMMENT ON COLUMN calsync.appointment_busy_intervals.appointment_id IS 'the live appointment';
COMMENT ON COLUMN calsync.appointment_busy_intervals.staff_id IS 'its staff row';
COMMENT ON COLUMN calsync.appointment_busy_intervals.host_key IS 'calsync.host_key(): the Cal.com user, else the staff row';
COMMENT ON COLUMN calsync.appointment_busy_intervals.phase_id IS 'the phase, or NULL for a whole appointment without phases';
COMMENT ON COLUMN calsync.appointment_busy_intervals.busy IS 'the busy time, [start, end)';
