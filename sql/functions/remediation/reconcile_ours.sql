-- What we synced: the Cal.com booking of each live (bookable) appointment and staff-required phase whose interval
-- starts in [p_since, p_until): calsync.synced_bookings (the worker's record), else the uid the app stored itself
-- (appointments.calcom_v2_booking_uid, appointment_phases.calcom_booking_uid). unsettled: the appointment has an
-- undelivered or dead event in calsync.outbox, so its booking may be changing right now (or the failure is
-- listed in remediation.failed_syncs): reconciliation leaves it to the worker.
CREATE OR REPLACE FUNCTION remediation.reconcile_ours(p_since timestamptz, p_until timestamptz DEFAULT NULL)
RETURNS TABLE (appointment_id bigint, slot bigint, uid text, booking_id bigint, our_start timestamptz,
               our_end timestamptz, event_type_id bigint, synced_start timestamptz, synced_end timestamptz,
               unsettled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH ours AS (
        SELECT a.id, s.slot, s.uid, s.booking_id,
               CASE WHEN s.slot = 0 THEN a.starts_at ELSE p.start_time END AS our_start,
               CASE WHEN s.slot = 0 THEN a.ends_at ELSE p.end_time END AS our_end,
               s.event_type_id, s.start_at, s.end_at
        FROM calsync.synced_bookings s
        JOIN appointments a ON a.id = s.appointment_id
        LEFT JOIN appointment_phases p ON p.id = s.slot AND p.appointment_id = a.id
        WHERE calsync.is_bookable_status(a.status) AND (s.slot = 0 OR p.id IS NOT NULL)
        UNION ALL
        SELECT a.id, 0, a.calcom_v2_booking_uid,
               CASE WHEN a.calcom_v2_booking_id ~ '^[0-9]{1,18}$' THEN a.calcom_v2_booking_id::bigint END,
               a.starts_at, a.ends_at,
               s.calcom_event_type_id, NULL, NULL
        FROM appointments a LEFT JOIN services s ON s.id = a.service_id
        WHERE a.calcom_v2_booking_uid IS NOT NULL AND NOT a.is_composite AND calsync.is_bookable_status(a.status)
          AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings x WHERE x.appointment_id = a.id)
        UNION ALL
        SELECT a.id, p.id, p.calcom_booking_uid, p.calcom_booking_id, p.start_time, p.end_time, NULL, NULL, NULL
        FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
        WHERE p.calcom_booking_uid IS NOT NULL AND a.is_composite AND p.staff_required
          AND calsync.is_bookable_status(a.status)
          AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings x WHERE x.appointment_id = a.id)
    )
    SELECT o.id, o.slot, o.uid, o.booking_id, o.our_start, o.our_end, o.event_type_id, o.start_at, o.end_at,
           EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = o.id::text)
    FROM ours o
    WHERE o.our_start >= p_since AND (p_until IS NULL OR o.our_start < p_until)
    ORDER BY o.id, o.slot
$$;
COMMENT ON FUNCTION remediation.reconcile_ours(timestamptz, timestamptz) IS
    'The Cal.com bookings of live appointments and phases starting in [since, until), as synced here; unsettled: an event of the appointment is still in calsync.outbox.';
