-- What the worker reads to sync appointments: one calsync.appointment_sync_state per id (the Python twin is
-- worker/sync/contract.py SyncState). An id whose appointment no longer exists comes back deleted, with what
-- Cal.com still has for it. Read with the caller's rights (the worker role may read these tables).
CREATE OR REPLACE FUNCTION calsync.appointment_sync_state(p_ids bigint[])
RETURNS SETOF calsync.appointment_sync_state
LANGUAGE sql STABLE AS $$
    SELECT ROW(
        x.id, a.id IS NULL, CASE WHEN a.id IS NULL THEN 'cancelled' ELSE a.status END, a.starts_at, a.ends_at,
        coalesce(a.is_composite, false), a.booking_timezone, a.staff_id, a.calcom_v2_booking_uid,
        a.calcom_sync_status,
        -- the times the appointment had in its undelivered events (where an earlier attempt may have booked it)
        coalesce((SELECT array_agg(DISTINCT (o.payload->>'starts_at')::timestamptz) FROM calsync.outbox o
                  WHERE a.id IS NOT NULL AND o.aggregateid = a.id::text AND o.payload ? 'starts_at'), '{}'),
        -- a host conflict listed as a known issue (grandfathered by the rules' pre-flight, or flagged by the
        -- runbook) that still exists: not synced until the business reschedules one of the bookings
        CASE WHEN EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'host_busy_time_no_overlap' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL)
            THEN (SELECT h.other_id FROM remediation.host_conflicts_of(a.id) AS h LIMIT 1) END,
        -- usable_email and email_accepted are one rule (Cal.com's, calsync.is_usable_email); an e-mail it refuses is
        -- never sent: placeholder_email goes in its place (the stored e-mail is kept for someone to correct)
        CASE WHEN c.id IS NOT NULL THEN ROW(
            c.id, c.name, c.email, c.phone, coalesce(c.email_is_placeholder, false), calsync.is_usable_email(c.email),
            calsync.is_usable_phone(c.phone), calsync.is_usable_email(c.email),
            calsync.placeholder_email(c.id))::calsync.sync_customer END,
        CASE WHEN s.id IS NOT NULL THEN ROW(s.id, s.name, s.calcom_event_type_id)::calsync.sync_service END,
        coalesce((
            SELECT array_agg(ROW(p.id, p.sequence_order, p.segment_key, p.segment_name, p.staff_required,
                                 p.start_time, p.end_time, p.calcom_booking_uid, p.calcom_booking_id,
                                 p.calcom_sync_status)::calsync.sync_phase ORDER BY p.sequence_order, p.id)
            FROM appointment_phases p WHERE p.appointment_id = a.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(m.segment_key, coalesce(m.child_event_type_id, m.event_type_id))
                             ::calsync.sync_segment_event_type ORDER BY m.segment_key)
            FROM calcom_event_map m
            WHERE m.service_id = a.service_id AND m.staff_id = a.staff_id
              AND coalesce(m.child_event_type_id, m.event_type_id) IS NOT NULL), '{}'),
        coalesce((
            SELECT array_agg(ROW(b.slot, b.uid, b.booking_id, b.start_at, b.end_at, b.event_type_id)
                             ::calsync.sync_known_booking ORDER BY b.slot)
            FROM calsync.synced_bookings b WHERE b.appointment_id = x.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(sp.id, sp.phase_id, sp.calcom_booking_uid)::calsync.sync_superseded_booking
                             ORDER BY sp.id)
            FROM calsync.superseded_phases sp
            WHERE sp.appointment_id = a.id AND sp.calcom_booking_uid IS NOT NULL AND sp.calcom_cancelled_at IS NULL),
            '{}'),
        (SELECT i.detail FROM calsync.integrity_issues i
         WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
           AND i.resolved_at IS NULL LIMIT 1),
        EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL),
        -- the salon's phone region and attendee language (NULL: the worker's defaults)
        cs.phone_region, cs.language
    )::calsync.appointment_sync_state
    FROM unnest(p_ids) AS x(id)
    LEFT JOIN appointments a ON a.id = x.id
    LEFT JOIN customers c ON c.id = a.customer_id
    LEFT JOIN services s ON s.id = a.service_id
    LEFT JOIN calsync.company_settings cs ON cs.company_id = a.company_id
$$;
COMMENT ON FUNCTION calsync.appointment_sync_state(bigint[]) IS
    'What the worker needs to sync these appointments, one calsync.appointment_sync_state each (deleted ones too).';
