-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Remaining category 1: live appointments that are over and never reached Cal.com. p_mode 'historical'
-- keeps them as history (calcom_sync_status orphaned_local: they exist only here); 'cancel' cancels them.
CREATE OR REPLACE FUNCTION remediation.resolve_past_unsynced(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL, p_mode text DEFAULT 'historical', p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_change remediation.change;
BEGIN
    IF p_mode NOT IN ('historical', 'cancel') THEN
        RAISE EXCEPTION 'resolve_past_unsynced: p_mode must be historical or cancel, not %', p_mode USING ERRCODE = '22023';
    END IF;
    FOR v_id IN SELECT appointment_id FROM remediation.past_unsynced WHERE ends_at < p_now ORDER BY 1 LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'past', p_reason, v_id,
            CASE WHEN p_mode = 'cancel'
                 THEN jsonb_build_object('status', 'cancelled', 'calcom_sync_status', 'synced', 'requires_manual_review', false,
                                         'manual_review_flagged_at', NULL, 'sync_error_code', 'PAST_APPOINTMENT')
                 ELSE jsonb_build_object('calcom_sync_status', 'orphaned_local', 'requires_manual_review', false,
                                         'manual_review_flagged_at', NULL, 'sync_error_code', 'PAST_APPOINTMENT') END,
            p_dry_run, format('a.calcom_sync_status IN (''failed'', ''pending'') AND a.status NOT IN (''cancelled'', ''no_show'') AND a.ends_at < %L::timestamptz', p_now));
        IF v_change IS NOT NULL THEN
            RETURN NEXT v_change;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.resolve_past_unsynced(boolean, text, uuid, integer, text, timestamptz) IS
    'Runbook step past (remaining category 1): past appointments that never synced are kept as history (orphaned_local) or cancelled.';
