-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- The sync columns a runbook step may change on an appointment, as an image.
CREATE OR REPLACE FUNCTION remediation.appointment_image(p_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'status', status, 'calcom_sync_status', calcom_sync_status, 'requires_manual_review', requires_manual_review,
        'manual_review_flagged_at', manual_review_flagged_at, 'sync_error_code', sync_error_code,
        'sync_error_message', sync_error_message, 'calcom_booking_id', calcom_booking_id,
        'calcom_v2_booking_id', calcom_v2_booking_id, 'calcom_v2_booking_uid', calcom_v2_booking_uid)
    FROM appointments WHERE id = p_id
$$;
COMMENT ON FUNCTION remediation.appointment_image(bigint) IS 'The appointment columns the runbook changes, as JSON (for remediation.log).';
