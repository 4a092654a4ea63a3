-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Apply an image to an appointment (the columns present in p_image); used by the steps and by undo.
CREATE OR REPLACE FUNCTION remediation.apply_appointment_image(p_id bigint, p_image jsonb) RETURNS void
LANGUAGE sql AS $$
    UPDATE appointments a SET
        status = CASE WHEN p_image ? 'status' THEN p_image->>'status' ELSE a.status END,
        calcom_sync_status = CASE WHEN p_image ? 'calcom_sync_status' THEN p_image->>'calcom_sync_status' ELSE a.calcom_sync_status END,
        requires_manual_review = CASE WHEN p_image ? 'requires_manual_review' THEN (p_image->>'requires_manual_review')::boolean ELSE a.requires_manual_review END,
        manual_review_flagged_at = CASE WHEN p_image ? 'manual_review_flagged_at' THEN (p_image->>'manual_review_flagged_at')::timestamptz ELSE a.manual_review_flagged_at END,
        sync_error_code = CASE WHEN p_image ? 'sync_error_code' THEN p_image->>'sync_error_code' ELSE a.sync_error_code END,
        sync_error_message = CASE WHEN p_image ? 'sync_error_message' THEN p_image->>'sync_error_message' ELSE a.sync_error_message END,
        calcom_booking_id = CASE WHEN p_image ? 'calcom_booking_id' THEN (p_image->>'calcom_booking_id')::bigint ELSE a.calcom_booking_id END,
        calcom_v2_booking_id = CASE WHEN p_image ? 'calcom_v2_booking_id' THEN p_image->>'calcom_v2_booking_id' ELSE a.calcom_v2_booking_id END,
        calcom_v2_booking_uid = CASE WHEN p_image ? 'calcom_v2_booking_uid' THEN p_image->>'calcom_v2_booking_uid' ELSE a.calcom_v2_booking_uid END,
        updated_at = now()
    WHERE a.id = p_id
$$;
COMMENT ON FUNCTION remediation.apply_appointment_image(bigint, jsonb) IS 'Set the appointment columns present in an image (runbook steps and undo).';
