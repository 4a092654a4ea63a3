-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Revert a run: every logged change, newest first. Updated columns get their before values back; rows a
-- step inserted (derived phases, integrity issues, outbox events not yet delivered) are removed again,
-- which restores the state before the run exactly. The undo is itself a logged run; returns its changes. A
-- change it does not know how to revert stops it (it is never marked undone unreverted).
CREATE OR REPLACE FUNCTION remediation.undo(p_run_id uuid, p_reason text DEFAULT NULL)
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    l remediation.log%ROWTYPE;
    v_undo uuid := gen_random_uuid();
    v_now jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM remediation.log WHERE run_id = p_run_id) THEN
        RAISE EXCEPTION 'remediation.undo: no run %', p_run_id USING ERRCODE = 'P0002',
            HINT = 'List runs with: SELECT * FROM remediation.runs ORDER BY started_at DESC;';
    END IF;
    FOR l IN SELECT * FROM remediation.log WHERE run_id = p_run_id AND undone_by IS NULL ORDER BY id DESC FOR UPDATE
    LOOP
        IF l.action = 'update' AND l.table_name = 'appointments' THEN
            v_now := remediation.appointment_image(l.row_id);
            PERFORM remediation.apply_appointment_image(l.row_id, l.before);
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', v_now, remediation.appointment_image(l.row_id));
        ELSIF l.action = 'update' AND l.table_name = 'customers' THEN
            v_now := (SELECT jsonb_build_object('email', email, 'email_is_placeholder', email_is_placeholder) FROM customers WHERE id = l.row_id);
            UPDATE customers SET email = l.before->>'email', email_is_placeholder = (l.before->>'email_is_placeholder')::boolean
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', v_now, l.before);
        ELSIF l.action = 'update' AND l.table_name = 'integrity_issues' THEN
            UPDATE calsync.integrity_issues SET resolved_at = NULL, resolved_by = NULL, resolution = NULL WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', l.after, l.before);
        ELSIF l.action = 'delete' AND l.table_name = 'appointment_phases' THEN
            -- a superseded phase comes back exactly as it was
            INSERT INTO appointment_phases SELECT * FROM jsonb_populate_record(NULL::appointment_phases, l.before);
            DELETE FROM calsync.superseded_phases WHERE id = (l.after->>'superseded_id')::bigint;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'insert', NULL, l.before);
        ELSIF l.action = 'insert' AND l.table_name = 'appointment_phases' THEN
            DELETE FROM appointment_phases WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSIF l.action = 'insert' AND l.table_name = 'integrity_issues' THEN
            DELETE FROM calsync.integrity_issues WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSIF l.action = 'insert' AND l.table_name = 'outbox' THEN
            -- an event the worker has not delivered yet is withdrawn; a delivered one cannot be unsent
            DELETE FROM calsync.outbox o WHERE o.id = (l.after->>'outbox_id')::uuid
              AND NOT EXISTS (SELECT 1 FROM calsync.outbox_delivery d WHERE d.outbox_id = o.id AND d.status = 'running');
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSE
            -- never marked undone without being reverted: the whole undo stops, nothing of it is kept
            RAISE EXCEPTION 'remediation.undo: run % logged a change it cannot revert (% of % row %)',
                p_run_id, l.action, l.table_name, l.row_id USING ERRCODE = 'P0001',
                HINT = 'A reconcile repair run is undone with remediation.undo_reconcile(run_id) (calsync remediate --undo).';
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.undo(uuid, text) IS
    'Revert a runbook run from its log (newest change first); the undo is itself logged as a run.';
