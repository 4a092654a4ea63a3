-- The bookings `calsync reconcile --repair` cancels at Cal.com: open orphan_at_calcom findings whose repair is
-- cancel_at_calcom (they carry our metadata: calsync made them), re-checked now: still held by no appointment
-- that is not cancelled, and their appointment has no event in calsync.outbox.
CREATE OR REPLACE FUNCTION remediation.reconcile_cancellations(p_limit integer DEFAULT NULL)
RETURNS SETOF calsync.reconcile_finding
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id, o.kind, o.uid, o.booking_id, o.appointment_id, o.slot, o.repair, o.detail, o.successor_uid,
           o.successor_booking_id, o.calcom_start, o.calcom_end, o.our_start, o.our_end, o.event_type_id, false
    FROM calsync.reconcile_findings o
    WHERE o.resolved_at IS NULL AND o.kind = 'orphan_at_calcom' AND o.repair = 'cancel_at_calcom'
      AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s JOIN appointments a ON a.id = s.appointment_id
                      WHERE s.uid = o.uid AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.calcom_v2_booking_uid = o.uid
                                                     AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
                      WHERE p.calcom_booking_uid = o.uid AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = o.appointment_id::text)
    ORDER BY o.id LIMIT p_limit
$$;
COMMENT ON FUNCTION remediation.reconcile_cancellations(integer) IS
    'Open findings of bookings calsync made that no live appointment holds: what `calsync reconcile --repair` cancels at Cal.com.';
