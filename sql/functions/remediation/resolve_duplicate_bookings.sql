-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Fix 3: of live appointments sharing a slot or a Cal.com booking keep one, the one with a booking (then
-- the lowest id), mark it synced, cancel the others. A duplicate that only points at the kept one's
-- booking loses that pointer (logged), so its cancellation does not cancel the kept booking at Cal.com.
CREATE OR REPLACE FUNCTION remediation.resolve_duplicate_bookings(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    g record;
    v_keep appointments%ROWTYPE;
    v_dup bigint;
    v_change remediation.change;
    v_issue bigint;
    v_seen bigint[] := '{}';  -- a row in two groups (same slot and same booking) is handled once
BEGIN
    FOR g IN
        WITH live AS (SELECT * FROM appointments WHERE status NOT IN ('cancelled', 'no_show')),
        groups AS (
            SELECT array_agg(id ORDER BY (calcom_booking_id IS NULL AND calcom_v2_booking_uid IS NULL), id) AS ids,
                   'same customer, start and service' AS why
            FROM live GROUP BY customer_id, starts_at, service_id HAVING count(*) > 1
            UNION ALL
            SELECT array_agg(id ORDER BY id), 'same Cal.com booking ' || calcom_booking_id FROM live
            WHERE calcom_booking_id IS NOT NULL GROUP BY calcom_booking_id HAVING count(*) > 1
            UNION ALL
            SELECT array_agg(id ORDER BY id), 'same Cal.com booking ' || calcom_v2_booking_uid FROM live
            WHERE calcom_v2_booking_uid IS NOT NULL GROUP BY calcom_v2_booking_uid HAVING count(*) > 1
        )
        SELECT * FROM groups ORDER BY ids[1] LIMIT p_limit
    LOOP
        CONTINUE WHEN g.ids <@ v_seen;
        v_seen := v_seen || g.ids;
        SELECT * INTO v_keep FROM appointments WHERE id = g.ids[1];
        IF v_keep.calcom_booking_id IS NOT NULL OR v_keep.calcom_v2_booking_uid IS NOT NULL THEN
            v_change := remediation.change_appointment(p_run_id, 'duplicates', p_reason, v_keep.id,
                jsonb_build_object('calcom_sync_status', 'synced', 'requires_manual_review', false,
                                   'manual_review_flagged_at', NULL, 'sync_error_code', NULL, 'sync_error_message', NULL),
                p_dry_run, format('a.status NOT IN (''cancelled'', ''no_show'') AND (a.calcom_sync_status <> ''synced'' OR a.requires_manual_review)'));
            IF v_change IS NOT NULL THEN
                RETURN NEXT v_change;
            END IF;
        END IF;
        FOREACH v_dup IN ARRAY g.ids[2:] LOOP
            v_change := remediation.change_appointment(p_run_id, 'duplicates', p_reason, v_dup,
                jsonb_build_object(
                    'status', 'cancelled', 'requires_manual_review', false, 'manual_review_flagged_at', NULL,
                    'sync_error_code', 'DOUBLE_BOOKING',
                    'sync_error_message', format('Duplicate of #%s (%s): cancelled by remediation', v_keep.id, g.why))
                || (SELECT CASE WHEN (d.calcom_booking_id IS NOT DISTINCT FROM v_keep.calcom_booking_id OR d.calcom_booking_id IS NULL)
                                 AND (d.calcom_v2_booking_uid IS NOT DISTINCT FROM v_keep.calcom_v2_booking_uid OR d.calcom_v2_booking_uid IS NULL)
                                THEN jsonb_build_object('calcom_booking_id', NULL, 'calcom_v2_booking_uid', NULL,
                                                        'calcom_v2_booking_id', NULL, 'calcom_sync_status', 'synced')
                                ELSE jsonb_build_object('calcom_sync_status', 'pending') END
                    FROM appointments d WHERE d.id = v_dup),
                p_dry_run, 'a.status NOT IN (''cancelled'', ''no_show'')');
            IF v_change IS NOT NULL THEN
                RETURN NEXT v_change;
                IF NOT p_dry_run THEN
                    FOR v_issue IN UPDATE calsync.integrity_issues SET resolved_at = now(), resolved_by = remediation.operator(),
                                          resolution = 'cancelled as a duplicate of #' || v_keep.id
                                   WHERE table_name = 'appointments' AND row_id = v_dup AND resolved_at IS NULL RETURNING id
                    LOOP
                        RETURN NEXT remediation.record(p_run_id, 'duplicates', p_reason, 'integrity_issues', v_issue, 'update',
                            jsonb_build_object('resolved_at', NULL, 'resolved_by', NULL, 'resolution', NULL),
                            (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
                             FROM calsync.integrity_issues WHERE id = v_issue));
                    END LOOP;
                END IF;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.resolve_duplicate_bookings(boolean, text, uuid, integer) IS
    'Runbook step duplicates (incident fix 3): keep the appointment with the Cal.com booking, cancel the duplicates.';
