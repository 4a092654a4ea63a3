-- What `calsync reconcile --repair` did at Cal.com to one cancel_at_calcom finding. Cancelled (or cancelled
-- already, or over: nothing left to cancel): logged as a change of the booking (table calcom_bookings, row its
-- Cal.com id, which no undo can revert) and the finding resolved (logged). Not cancelled: nothing is recorded, the
-- finding stays open with the answer in its detail, and the change returned says why.
CREATE OR REPLACE FUNCTION remediation.record_reconcile_cancellation(
    p_run_id uuid, p_finding_id bigint, p_reason text, p_cancelled boolean, p_http_status integer, p_message text,
    p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    f calsync.reconcile_findings%ROWTYPE;
    v_before jsonb;
BEGIN
    SELECT * INTO f FROM calsync.reconcile_findings
    WHERE id = p_finding_id AND resolved_at IS NULL AND repair = 'cancel_at_calcom' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT p_cancelled THEN
        UPDATE calsync.reconcile_findings
        SET detail = split_part(detail, ' [last cancel: ', 1) || format(' [last cancel: HTTP %s %s]',
                                                                       coalesce(p_http_status::text, '-'), left(p_message, 300))
        WHERE id = f.id;
        RETURN NEXT ('reconcile', 'calcom_bookings', coalesce(f.booking_id, 0), 'update',
                     jsonb_build_object('uid', f.uid, 'status', 'accepted'),
                     jsonb_build_object('uid', f.uid, 'error', p_message, 'http_status', p_http_status))::remediation.change;
        RETURN;
    END IF;
    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'calcom_bookings', coalesce(f.booking_id, 0), 'update',
        jsonb_build_object('uid', f.uid, 'status', 'accepted', 'appointment_id', f.appointment_id),
        jsonb_build_object('uid', f.uid, 'status', 'cancelled', 'http_status', p_http_status, 'answer', left(p_message, 300)));
    v_before := jsonb_build_object('resolved_at', f.resolved_at, 'resolved_by', f.resolved_by, 'resolution', f.resolution);
    UPDATE calsync.reconcile_findings SET resolved_at = p_now, resolved_by = p_run_id,
        resolution = format('cancelled at Cal.com by run %s', p_run_id)
    WHERE id = f.id;
    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'reconcile_findings', f.id, 'update', v_before,
        (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
         FROM calsync.reconcile_findings WHERE id = f.id));
END
$$;
COMMENT ON FUNCTION remediation.record_reconcile_cancellation(uuid, bigint, text, boolean, integer, text, timestamptz) IS
    'Record the cancellation at Cal.com of a booking calsync made that no live appointment holds (logged, finding resolved), or why it failed.';
