-- The live appointments whose staff-required time overlaps this one's, for the same host. Candidates come
-- from the appointments index on (staff_id, starts_at), within a day of this appointment.
CREATE OR REPLACE FUNCTION remediation.host_conflicts_of(p_appointment_id bigint)
RETURNS TABLE (other_id bigint, host_key text, busy tstzrange, other_busy tstzrange)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT ON (o.appointment_id) o.appointment_id, i.host_key, i.busy, o.busy
    FROM calsync.appointment_busy_intervals i
    JOIN appointments a ON a.id = i.appointment_id
    JOIN staff s ON s.id = a.staff_id
    JOIN staff s2 ON s2.id = s.id OR (s.calcom_user_id IS NOT NULL AND s2.calcom_user_id = s.calcom_user_id)
    JOIN appointments b ON b.staff_id = s2.id AND b.id <> a.id
                       AND b.starts_at > a.starts_at - interval '1 day' AND b.starts_at < a.ends_at
    JOIN calsync.appointment_busy_intervals o ON o.appointment_id = b.id AND o.host_key = i.host_key AND o.busy && i.busy
    WHERE i.appointment_id = p_appointment_id
    ORDER BY o.appointment_id
$$;
COMMENT ON FUNCTION remediation.host_conflicts_of(bigint) IS
    'Live appointments of the same host whose staff-required time overlaps this appointment''s.';

-- A second live appointment holds the slot or the Cal.com booking, or the host's staff-required time
-- overlaps another live appointment's (the same person on two staff rows counts as one host).
CREATE OR REPLACE FUNCTION remediation.is_double_booked(p_appointment_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM appointments a JOIN appointments b ON b.id <> a.id
        WHERE a.id = p_appointment_id AND a.status NOT IN ('cancelled', 'no_show')
          AND b.status NOT IN ('cancelled', 'no_show')
          AND ((b.customer_id = a.customer_id AND b.starts_at = a.starts_at AND b.service_id = a.service_id)
               OR (a.calcom_booking_id IS NOT NULL AND b.calcom_booking_id = a.calcom_booking_id)
               OR (a.calcom_v2_booking_uid IS NOT NULL AND b.calcom_v2_booking_uid = a.calcom_v2_booking_uid)))
        OR EXISTS (SELECT 1 FROM remediation.host_conflicts_of(p_appointment_id))
$$;
COMMENT ON FUNCTION remediation.is_double_booked(bigint) IS
    'true when another live appointment has the same slot or Cal.com booking, or its host is booked twice at once.';

-- What in the data keeps an appointment from syncing (NULL: nothing found): a composite without phases or
-- without staff, invalid phases, a double booking, or a customer without any usable contact.
CREATE OR REPLACE FUNCTION remediation.blocking_cause(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN a.is_composite AND (a.staff_id IS NULL
                                 OR NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id))
            THEN 'COMPOSITE_FAILURE'
        WHEN EXISTS (SELECT 1 FROM appointment_phases p
                     WHERE p.appointment_id = a.id
                       AND (p.sequence_order IS NULL OR p.segment_key IS NULL OR p.duration_minutes <= 0
                            OR p.start_time <> a.starts_at + make_interval(mins => p.start_offset_minutes)
                            OR EXISTS (SELECT 1 FROM appointment_phases q
                                       WHERE q.appointment_id = p.appointment_id AND q.sequence_order = p.sequence_order
                                         AND q.id <> p.id)))
            THEN 'PHASE_ERROR'
        WHEN remediation.is_double_booked(a.id) THEN 'DOUBLE_BOOKING'
        WHEN NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone) THEN 'MISSING_CONTACT'
    END
    FROM appointments a LEFT JOIN customers c ON c.id = a.customer_id
    WHERE a.id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.blocking_cause(bigint) IS
    'What in the data keeps the appointment from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL.';

-- Why an appointment's sync is failing, as one category (remediation.categories). The worker's own verdict
-- (sync_error_code) wins; for failures from before the worker (the app's HTTP_400 rows with cut messages)
-- the data decides (remediation.blocking_cause), then what is left of Cal.com's message; else OTHER.
-- Works on a database without the rules.
CREATE OR REPLACE FUNCTION remediation.failure_category(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(
        (SELECT k.category FROM remediation.categories k WHERE k.category = a.sync_error_code AND k.origin = 'worker'),
        remediation.blocking_cause(a.id),
        CASE WHEN a.sync_error_message ILIKE '%in the past%' THEN 'PAST_APPOINTMENT'
             WHEN a.sync_error_message ILIKE '%already has booking%' OR a.sync_error_message ILIKE '%not available%'
                 THEN 'HOST_UNAVAILABLE' END,
        'OTHER')
    FROM appointments a
    WHERE a.id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.failure_category(bigint) IS
    'The category of a failing appointment''s sync: the worker''s verdict, else what blocks it in the data, else Cal.com''s message, else OTHER.';
