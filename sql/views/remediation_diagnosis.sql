-- Building blocks of the findings, one row per appointment (or pair) and written so that a filter on
-- appointment_id reaches the indexes: the per-appointment functions (remediation_classify.sql) read them
-- with such a filter, the findings views drive them from the partial indexes over the problem rows.

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

-- Pairs of live appointments of one host (the Cal.com user, else the staff row: one person on two staff
-- rows is one host) whose staff-required time overlaps. Candidates come from the index on
-- (staff_id, starts_at): an appointment is assumed to last less than a day.
CREATE OR REPLACE VIEW remediation.host_overlaps AS
SELECT a.id AS appointment_id, b.id AS other_id, i.host_key, i.busy, o.busy AS other_busy,
       a.staff_id, b.staff_id AS other_staff_id, a.starts_at, a.ends_at, a.calcom_sync_status
FROM appointments a
JOIN staff s ON s.id = a.staff_id
JOIN staff s2 ON s2.id = s.id OR (s.calcom_user_id IS NOT NULL AND s2.calcom_user_id = s.calcom_user_id)
JOIN appointments b ON b.staff_id = s2.id AND b.id <> a.id AND b.status NOT IN ('cancelled', 'no_show')
                   AND b.starts_at > a.starts_at - interval '1 day' AND b.starts_at < a.ends_at
                   AND b.ends_at > a.starts_at
JOIN calsync.appointment_busy_intervals i ON i.appointment_id = a.id
JOIN calsync.appointment_busy_intervals o ON o.appointment_id = b.id AND o.busy && i.busy
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

-- Why an appointment does not sync. blocking_cause: what in the data keeps it from syncing (checked in this
-- order): a composite without phases or staff, invalid phases, a double booking (same slot, same Cal.com
-- booking, or its host booked twice at once), a customer without any usable contact. category: the
-- worker's verdict (sync_error_code) wins; for failures from before the worker (the app's HTTP_400 rows with
-- cut messages) the data decides, then what is left of Cal.com's message; else OTHER.
CREATE OR REPLACE VIEW remediation.sync_diagnosis AS
SELECT a.id AS appointment_id,
       x.blocking_cause,
       coalesce(w.category, x.blocking_cause,
                CASE WHEN a.sync_error_message ILIKE '%in the past%' THEN 'PAST_APPOINTMENT'
                     WHEN a.sync_error_message ILIKE '%already has booking%'
                          OR a.sync_error_message ILIKE '%not available%' THEN 'HOST_UNAVAILABLE' END,
                'OTHER') AS category
FROM appointments a
LEFT JOIN customers c ON c.id = a.customer_id
LEFT JOIN remediation.categories w ON w.category = a.sync_error_code AND w.origin = 'worker'
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN a.is_composite AND (a.staff_id IS NULL
                                 OR NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id))
            THEN 'COMPOSITE_FAILURE'
        WHEN EXISTS (SELECT 1 FROM remediation.broken_phases b WHERE b.appointment_id = a.id)
            THEN 'PHASE_ERROR'
        WHEN a.status NOT IN ('cancelled', 'no_show')
             AND (EXISTS (SELECT 1 FROM appointments d
                          WHERE d.customer_id = a.customer_id AND d.starts_at = a.starts_at
                            AND d.service_id = a.service_id AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show'))
                  OR EXISTS (SELECT 1 FROM appointments d
                             WHERE d.calcom_booking_id = a.calcom_booking_id AND d.id <> a.id
                               AND d.status NOT IN ('cancelled', 'no_show'))
                  OR EXISTS (SELECT 1 FROM appointments d
                             WHERE d.calcom_v2_booking_uid = a.calcom_v2_booking_uid AND d.id <> a.id
                               AND d.status NOT IN ('cancelled', 'no_show'))
                  OR EXISTS (SELECT 1 FROM remediation.host_overlaps h WHERE h.appointment_id = a.id))
            THEN 'DOUBLE_BOOKING'
        WHEN NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone) THEN 'MISSING_CONTACT'
    END AS blocking_cause
) AS x;
COMMENT ON VIEW remediation.sync_diagnosis IS
    'Why each appointment does (or would) fail to sync. Filter by appointment_id; remediation.failed_syncs lists the failing ones.';
COMMENT ON COLUMN remediation.sync_diagnosis.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.sync_diagnosis.blocking_cause IS
    'what in the data keeps it from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL';
COMMENT ON COLUMN remediation.sync_diagnosis.category IS
    'its failure category (remediation.categories): the worker''s verdict, else the blocking cause, else Cal.com''s message, else OTHER';
