-- A change from Cal.com that was not applied is kept for a person: an open integrity issue of the appointment
-- (rule names why: calcom_change_keeps_the_rules, calcom_change_loses_to_newer_app_change,
-- calcom_change_matches_a_known_booking), and the appointment flagged for manual review. The detail names the
-- delivery (calsync.webhook_deliveries) and never a person's contact. Returns the issue's id.
-- One open issue per rule and appointment (integrity_issues_one_open_per_rule_and_row): a second refused change
-- of the same kind (the customer moved the booking twice while the app's change was on its way) joins the open
-- issue, its detail added after the first ones (kept to their first 4,000 characters, so the
-- issue stays readable; every delivery keeps its own detail in calsync.webhook_deliveries). Before revision 0028
-- the second one broke the unique index and its delivery was not stored (the receiver answered 500).
CREATE OR REPLACE FUNCTION calsync.record_refused_calcom_change(p_appointment_id bigint, p_rule text, p_detail text,
                                                               p_now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO calsync.integrity_issues AS i (rule, table_name, row_id, detail, found_by, found_at)
    VALUES (p_rule, 'appointments', p_appointment_id, p_detail, 'calsync.receive_webhook', p_now)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL
    DO UPDATE SET detail = left(i.detail, 4000) || E'\nthen: ' || excluded.detail
    RETURNING i.id INTO v_id;
    UPDATE appointments
    SET requires_manual_review = true, manual_review_flagged_at = coalesce(manual_review_flagged_at, p_now)
    WHERE id = p_appointment_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.record_refused_calcom_change(bigint, text, text, timestamptz) IS
    'Keep a Cal.com change that was not applied: an open integrity issue of the appointment (a second one of the same rule joins it), flagged for manual review.';
