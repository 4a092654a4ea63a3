-- The staff-required time of every live appointment with a host: its phases with staff_required when it
-- has phases, else [starts_at, ends_at). Processing gaps are free, so two perms can interleave.
CREATE OR REPLACE VIEW calsync.appointment_busy_intervals AS
SELECT a.id AS appointment_id,
       p.id AS phase_id,
       a.staff_id,
       calsync.host_key(s.calcom_user_id, a.staff_id) AS host_key,
       tstzrange(p.start_time, p.end_time, '[)') AS busy
FROM appointments a
JOIN staff s ON s.id = a.staff_id
JOIN appointment_phases p ON p.appointment_id = a.id AND p.staff_required
WHERE a.status NOT IN ('cancelled', 'no_show') AND p.end_time > p.start_time
UNION ALL
SELECT a.id, NULL::bigint, a.staff_id, calsync.host_key(s.calcom_user_id, a.staff_id),
       tstzrange(a.starts_at, a.ends_at, '[)')
FROM appointments a
JOIN staff s ON s.id = a.staff_id
WHERE a.status NOT IN ('cancelled', 'no_show') AND a.ends_at > a.starts_at
  AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id);
COMMENT ON VIEW calsync.appointment_busy_intervals IS
    'Staff-required time of live appointments: phases with staff_required, else the whole appointment.';
COMMENT ON COLUMN calsync.appointment_busy_intervals.host_key IS 'calsync.host_key(): the Cal.com user, else the staff row';
COMMENT ON COLUMN calsync.appointment_busy_intervals.phase_id IS 'the phase, or NULL for a whole appointment without phases';
COMMENT ON COLUMN calsync.appointment_busy_intervals.busy IS 'the busy time, [start, end)';
