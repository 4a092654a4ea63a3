-- A building block of the findings, one row per appointment (or pair) and written so that a filter on
-- appointment_id reaches the indexes: the per-appointment functions (sql/functions/remediation/) read it
-- with such a filter, the findings views drive it from the partial indexes over the problem rows.

-- Invalid phases: the fields the sync needs are missing, the time does not follow the appointment, or two
-- phases share a place in the sequence.
CREATE OR REPLACE VIEW remediation.broken_phases AS
SELECT p.appointment_id, p.id AS phase_id, p.sequence_order,
       CASE WHEN p.sequence_order IS NULL THEN 'no sequence_order'
            WHEN p.segment_key IS NULL THEN 'no segment_key'
            WHEN p.duration_minutes <= 0 THEN 'duration is not positive'
            WHEN p.start_time <> a.starts_at + make_interval(mins => p.start_offset_minutes)
                THEN 'start_time does not follow the appointment''s start and the phase offset'
            ELSE 'another phase has the same sequence_order' END AS problem
FROM appointment_phases p
JOIN appointments a ON a.id = p.appointment_id
WHERE p.sequence_order IS NULL OR p.segment_key IS NULL OR p.duration_minutes <= 0
   OR p.start_time <> a.starts_at + make_interval(mins => p.start_offset_minutes)
   OR EXISTS (SELECT 1 FROM appointment_phases q
              WHERE q.appointment_id = p.appointment_id AND q.sequence_order = p.sequence_order AND q.id <> p.id);
COMMENT ON VIEW remediation.broken_phases IS
    'Phases the sync cannot use (fields missing, time not following the appointment, sequence taken twice); the runbook step broken_phases derives them again.';
COMMENT ON COLUMN remediation.broken_phases.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.broken_phases.phase_id IS 'the phase';
COMMENT ON COLUMN remediation.broken_phases.sequence_order IS 'its place in the sequence';
COMMENT ON COLUMN remediation.broken_phases.problem IS 'what is wrong with it, in words';
