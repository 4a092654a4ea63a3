-- Revert a reconcile repair run from its log, newest change first: the rows only reconciliation changes (the
-- worker's record calsync.synced_bookings, an appointment's times, a phase's booking columns, the findings) are
-- put back here, then remediation.undo reverts the rest of the run (the appointments' sync columns, withdrawing
-- events the worker has not taken yet). A booking cancelled at Cal.com stays cancelled: the undo logs that it did
-- not revert it. Our own writes enqueue nothing (calsync.writer = worker): the salon's rows are as they were, and
-- the next reconciliation finds what Cal.com still differs in.
CREATE OR REPLACE FUNCTION remediation.undo_reconcile(p_run_id uuid, p_reason text DEFAULT NULL)
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    l remediation.log%ROWTYPE;
    v_undo uuid := gen_random_uuid();
    v_reason text := coalesce(p_reason, 'undo of run ' || p_run_id);
    v_writer text := current_setting('calsync.writer', true);
    v_now jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM remediation.log WHERE run_id = p_run_id) THEN
        RAISE EXCEPTION 'remediation.undo_reconcile: no run %', p_run_id USING ERRCODE = 'P0002',
            HINT = 'List runs with: SELECT * FROM remediation.runs ORDER BY started_at DESC;';
    END IF;
    PERFORM set_config('calsync.writer', 'worker', true);
    FOR l IN SELECT * FROM remediation.log
             WHERE run_id = p_run_id AND undone_by IS NULL
               AND (table_name IN ('synced_bookings', 'appointment_times', 'reconcile_findings', 'calcom_bookings')
                    OR (table_name = 'appointment_phases' AND action = 'update'))
             ORDER BY id DESC FOR UPDATE
    LOOP
        IF l.table_name = 'synced_bookings' THEN
            v_now := (SELECT to_jsonb(s) FROM calsync.synced_bookings s
                      WHERE s.appointment_id = l.row_id AND s.slot = (coalesce(l.after, l.before)->>'slot')::bigint);
            DELETE FROM calsync.synced_bookings s
            WHERE s.appointment_id = l.row_id AND s.slot = (coalesce(l.after, l.before)->>'slot')::bigint;
            IF l.before IS NOT NULL THEN
                INSERT INTO calsync.synced_bookings SELECT * FROM jsonb_populate_record(NULL::calsync.synced_bookings, l.before);
            END IF;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id,
                CASE WHEN l.before IS NULL THEN 'delete' WHEN v_now IS NULL THEN 'insert' ELSE 'update' END, v_now, l.before);
        ELSIF l.table_name = 'appointment_times' THEN
            v_now := (SELECT jsonb_build_object('starts_at', starts_at, 'ends_at', ends_at) FROM appointments WHERE id = l.row_id);
            UPDATE appointments SET starts_at = (l.before->>'starts_at')::timestamptz,
                ends_at = (l.before->>'ends_at')::timestamptz, updated_at = now()
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', v_now, l.before);
        ELSIF l.table_name = 'appointment_phases' THEN
            v_now := (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id', calcom_booking_id,
                                                'calcom_sync_status', calcom_sync_status) FROM appointment_phases WHERE id = l.row_id);
            UPDATE appointment_phases SET calcom_booking_uid = l.before->>'calcom_booking_uid',
                calcom_booking_id = (l.before->>'calcom_booking_id')::bigint,
                calcom_sync_status = l.before->>'calcom_sync_status', updated_at = now()
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', v_now, l.before);
        ELSIF l.table_name = 'reconcile_findings' THEN
            v_now := (SELECT to_jsonb(o) FROM calsync.reconcile_findings o WHERE o.id = l.row_id);
            UPDATE calsync.reconcile_findings o SET
                resolved_at = CASE WHEN l.before ? 'resolved_at' THEN (l.before->>'resolved_at')::timestamptz ELSE o.resolved_at END,
                resolved_by = CASE WHEN l.before ? 'resolved_by' THEN (l.before->>'resolved_by')::uuid ELSE o.resolved_by END,
                resolution = CASE WHEN l.before ? 'resolution' THEN l.before->>'resolution' ELSE o.resolution END,
                repair = CASE WHEN l.before ? 'repair' THEN l.before->>'repair' ELSE o.repair END,
                detail = CASE WHEN l.before ? 'detail' THEN l.before->>'detail' ELSE o.detail END
            WHERE o.id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', l.after, l.before);
        ELSE  -- calcom_bookings: Cal.com cannot un-cancel a booking
            RETURN NEXT remediation.record(v_undo, 'undo', 'not reverted: Cal.com keeps booking ' || (l.after->>'uid')
                                           || ' cancelled (' || v_reason || ')', l.table_name, l.row_id, 'update', l.after, l.after);
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
    RETURN QUERY SELECT * FROM remediation.undo(p_run_id, p_reason);
    PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
END
$$;
COMMENT ON FUNCTION remediation.undo_reconcile(uuid, text) IS
    'Revert a reconcile repair run from its log: the worker''s record, times, phase bookings and findings here, the rest by remediation.undo; Cal.com cancellations are logged as not reverted.';
