-- Record what reconciliation found: p_bookings is a JSON array of calsync.calcom_booking (the Python twin is
-- worker/ops/reconcile_contract.py CalcomBooking), what Cal.com holds in [p_since, p_until) of the event types
-- listed, plus every booking of ours read by uid. remediation.reconcile_compare decides; this function keeps the
-- findings in calsync.reconcile_findings: a finding still open is seen again (last_seen_*), a new one inserted,
-- and an open one in the window that was not found again is resolved (it settled by itself). Never deleted.
-- With p_dry_run (the default) nothing is recorded: the findings are returned, is_new against the open ones.
CREATE OR REPLACE FUNCTION remediation.reconcile_bookings(p_run_id uuid, p_bookings jsonb, p_since timestamptz,
                                                          p_until timestamptz DEFAULT NULL,
                                                          p_dry_run boolean DEFAULT true,
                                                          p_now timestamptz DEFAULT now())
RETURNS SETOF calsync.reconcile_finding
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_bookings calsync.calcom_booking[] := ARRAY(
        SELECT r FROM jsonb_populate_recordset(NULL::calsync.calcom_booking, coalesce(p_bookings, '[]')) AS r);
    f calsync.reconcile_finding;
    v_id bigint;
    v_repair text;
    v_detail text;
BEGIN
    IF p_dry_run THEN
        RETURN QUERY
        SELECT o.id, c.kind, c.uid, c.booking_id, c.appointment_id, c.slot, c.repair, c.detail, c.successor_uid,
               c.successor_booking_id, c.calcom_start, c.calcom_end, c.our_start, c.our_end, c.event_type_id,
               o.id IS NULL
        FROM remediation.reconcile_compare(v_bookings, p_since, p_until) AS c
        LEFT JOIN calsync.reconcile_findings o ON o.kind = c.kind AND o.uid = c.uid AND o.resolved_at IS NULL;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('calsync.reconcile_findings'));  -- one recording run at a time
    FOR f IN SELECT * FROM remediation.reconcile_compare(v_bookings, p_since, p_until) LOOP
        UPDATE calsync.reconcile_findings o
        -- an outside reschedule the integrity rules refused stays a person's while the finding is open
        SET booking_id = f.booking_id, appointment_id = f.appointment_id, slot = f.slot,
            repair = CASE WHEN o.repair = 'person' AND f.repair = 'apply_reschedule' THEN o.repair ELSE f.repair END,
            detail = CASE WHEN o.repair = 'person' AND f.repair = 'apply_reschedule' THEN o.detail ELSE f.detail END,
            successor_uid = f.successor_uid, successor_booking_id = f.successor_booking_id,
            calcom_start = f.calcom_start, calcom_end = f.calcom_end, our_start = f.our_start, our_end = f.our_end,
            event_type_id = f.event_type_id, last_seen_by = p_run_id, last_seen_at = p_now
        WHERE o.kind = f.kind AND o.uid = f.uid AND o.resolved_at IS NULL
        RETURNING o.id, o.repair, o.detail INTO v_id, v_repair, v_detail;
        f.is_new := v_id IS NULL;
        IF NOT f.is_new THEN
            f.id := v_id;
            f.repair := v_repair;
            f.detail := v_detail;
        ELSE
            INSERT INTO calsync.reconcile_findings
                (kind, uid, booking_id, appointment_id, slot, repair, detail, successor_uid, successor_booking_id,
                 calcom_start, calcom_end, our_start, our_end, event_type_id, found_by, found_at, last_seen_by,
                 last_seen_at)
            VALUES (f.kind, f.uid, f.booking_id, f.appointment_id, f.slot, f.repair, f.detail, f.successor_uid,
                    f.successor_booking_id, f.calcom_start, f.calcom_end, f.our_start, f.our_end, f.event_type_id,
                    p_run_id, p_now, p_run_id, p_now)
            RETURNING id INTO f.id;
        END IF;
        RETURN NEXT f;
    END LOOP;
    UPDATE calsync.reconcile_findings o
    SET resolved_at = p_now, resolved_by = p_run_id, resolution = 'not found again by reconcile run ' || p_run_id
    WHERE o.resolved_at IS NULL AND o.last_seen_by IS DISTINCT FROM p_run_id
      AND coalesce(o.our_start, o.calcom_start) >= p_since
      AND (p_until IS NULL OR coalesce(o.our_start, o.calcom_start) < p_until);
END
$$;
COMMENT ON FUNCTION remediation.reconcile_bookings(uuid, jsonb, timestamptz, timestamptz, boolean, timestamptz) IS
    'Compare what Cal.com holds (calsync.calcom_booking JSON) with what we synced and keep the findings in calsync.reconcile_findings (a dry run, the default, records nothing); returns them.';
