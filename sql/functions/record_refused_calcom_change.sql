-- A change from Cal.com that was not applied is kept for a person: an open integrity issue of the appointment
-- (rule names why: calcom_change_keeps_the_rules, calcom_change_loses_to_newer_app_change,
-- calcom_change_matches_a_known_booking), and the appointment flagged for manual review. The detail names the
-- delivery (calsync.webhook_deliveries) and never a person's contact. Returns the issue's id.
CREATE OR REPLACE FUNCTION calsync.record_refused_calcom_change(p_appointment_id bigint, p_rule text, p_detail text,
                                                               p_now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by, found_at)
    VALUES (p_rule, 'appointments', p_appointment_id, p_detail, 'calsync.receive_webhook', p_now)
    RETURNING id INTO v_id;
    UPDATE appointments
    SET requires_manual_review = true, manual_review_flagged_at = coalesce(manual_review_flagged_at, p_now)
    WHERE id = p_appointment_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.record_refused_calcom_change(bigint, text, text, timestamptz) IS
    'Keep a Cal.com change that was not applied: an open integrity issue of the appointment, flagged for manual review.';
