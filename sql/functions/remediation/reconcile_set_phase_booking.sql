-- A phase's Cal.com booking columns set by reconciliation, logged (table appointment_phases, action update, with
-- the columns before and after; remediation.undo_reconcile puts them back).
CREATE OR REPLACE FUNCTION remediation.reconcile_set_phase_booking(p_run_id uuid, p_reason text, p_phase_id bigint,
                                                                   p_uid text, p_booking_id bigint, p_status text)
RETURNS remediation.change
LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb := (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id',
                                                 calcom_booking_id, 'calcom_sync_status', calcom_sync_status)
                       FROM appointment_phases WHERE id = p_phase_id FOR UPDATE);
BEGIN
    UPDATE appointment_phases SET calcom_booking_uid = p_uid, calcom_booking_id = p_booking_id,
        calcom_sync_status = p_status, updated_at = now()
    WHERE id = p_phase_id;
    RETURN remediation.record(p_run_id, 'reconcile', p_reason, 'appointment_phases', p_phase_id, 'update', v_before,
        (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id', calcom_booking_id,
                                   'calcom_sync_status', calcom_sync_status) FROM appointment_phases WHERE id = p_phase_id));
END
$$;
COMMENT ON FUNCTION remediation.reconcile_set_phase_booking(uuid, text, bigint, text, bigint, text) IS
    'Set a phase''s Cal.com booking (uid, id, sync status) for reconciliation and log it before and after.';
