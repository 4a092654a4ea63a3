-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Fix 4: cancel live appointments without a service, and composite ones without staff (staff required).
CREATE OR REPLACE FUNCTION remediation.cancel_invalid_appointments(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    v_change remediation.change;
BEGIN
    FOR r IN SELECT a.id, CASE WHEN a.service_id IS NULL THEN 'service missing' ELSE 'staff missing' END AS why,
                    (a.calcom_booking_id IS NOT NULL OR a.calcom_v2_booking_uid IS NOT NULL) AS booked
             FROM appointments a
             WHERE a.status NOT IN ('cancelled', 'no_show') AND (a.service_id IS NULL OR (a.is_composite AND a.staff_id IS NULL))
             ORDER BY a.id LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'invalid', p_reason, r.id,
            jsonb_build_object('status', 'cancelled', 'requires_manual_review', false, 'manual_review_flagged_at', NULL,
                               'sync_error_code', NULL,
                               'sync_error_message', 'Invalid appointment - ' || r.why || ': cancelled by remediation',
                               -- nothing at Cal.com: nothing left to sync; else the worker cancels the booking
                               'calcom_sync_status', CASE WHEN r.booked THEN 'pending' ELSE 'synced' END),
            p_dry_run, 'a.status NOT IN (''cancelled'', ''no_show'') AND (a.service_id IS NULL OR (a.is_composite AND a.staff_id IS NULL))');
        IF v_change IS NOT NULL THEN
            RETURN NEXT v_change;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.cancel_invalid_appointments(boolean, text, uuid, integer) IS
    'Runbook step invalid (incident fix 4): cancel live appointments without a service, or composite ones without staff.';
