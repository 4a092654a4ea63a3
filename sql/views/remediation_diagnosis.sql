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

-- Pairs of live appointments that are one booking twice: the same customer, start and service, or the same
-- Cal.com booking (id or uid). Each of the three is one index lookup per appointment.
CREATE OR REPLACE VIEW remediation.shared_bookings AS
SELECT a.id AS appointment_id, x.other_id, x.reason
FROM appointments a
CROSS JOIN LATERAL (
    SELECT d.id AS other_id, 'same customer, start and service' AS reason FROM appointments d
    WHERE d.customer_id = a.customer_id AND d.starts_at = a.starts_at AND d.service_id = a.service_id
      AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    UNION ALL
    SELECT d.id, 'same Cal.com booking ' || d.calcom_booking_id FROM appointments d
    WHERE d.calcom_booking_id = a.calcom_booking_id AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    UNION ALL
    SELECT d.id, 'same Cal.com booking ' || d.calcom_v2_booking_uid FROM appointments d
    WHERE d.calcom_v2_booking_uid = a.calcom_v2_booking_uid AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    OFFSET 0
) AS x
WHERE a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW remediation.shared_bookings IS
    'Pairs of live appointments that are one booking twice (same customer, start and service, or same Cal.com booking). Filter by appointment_id; remediation.duplicate_bookings lists the ones to resolve.';
COMMENT ON COLUMN remediation.shared_bookings.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.shared_bookings.other_id IS 'another live appointment that is the same booking';
COMMENT ON COLUMN remediation.shared_bookings.reason IS 'what they share';

-- The appointments the findings start from: not settled at Cal.com (sync pending or failed), flagged for
-- a person, or listed in an open integrity issue. Each part is read from its own index, so the findings
-- stay fast however large the table is; an appointment that is synced and breaks no listed rule is settled.
CREATE OR REPLACE VIEW remediation.unsettled_appointments AS
SELECT a.id AS appointment_id FROM appointments a WHERE a.calcom_sync_status IN ('failed', 'pending')
UNION
SELECT a.id FROM appointments a WHERE a.requires_manual_review
UNION
SELECT i.row_id FROM calsync.integrity_issues i WHERE i.table_name = 'appointments' AND i.resolved_at IS NULL;
COMMENT ON VIEW remediation.unsettled_appointments IS
    'Appointments not settled: sync pending or failed, flagged for manual review, or in an open integrity issue. The findings views start from these.';
COMMENT ON COLUMN remediation.unsettled_appointments.appointment_id IS 'the appointment';

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
    -- OFFSET 0 in the EXISTS keeps each a lookup for this appointment (never a hash of the whole table)
    SELECT CASE
        WHEN a.is_composite AND (a.staff_id IS NULL
                                 OR NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id))
            THEN 'COMPOSITE_FAILURE'
        WHEN EXISTS (SELECT 1 FROM remediation.broken_phases b WHERE b.appointment_id = a.id OFFSET 0)
            THEN 'PHASE_ERROR'
        WHEN EXISTS (SELECT 1 FROM remediation.shared_bookings d WHERE d.appointment_id = a.id OFFSET 0)
             OR EXISTS (SELECT 1 FROM remediation.host_overlaps h WHERE h.appointment_id = a.id OFFSET 0)
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
