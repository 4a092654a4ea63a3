-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Remaining category 2: upcoming live appointments whose host is booked twice: flag both for a
-- reschedule, naming the conflicting booking, and list them in calsync.integrity_issues.
CREATE OR REPLACE FUNCTION remediation.flag_host_conflicts(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    v_message text;
    v_change remediation.change;
    v_issue bigint;
BEGIN
    FOR r IN SELECT DISTINCT ON (h.appointment_id) h.* FROM remediation.host_conflicts h
             JOIN appointments a ON a.id = h.appointment_id
             WHERE NOT (a.requires_manual_review AND a.sync_error_code IS NOT DISTINCT FROM 'HOST_UNAVAILABLE')
             ORDER BY h.appointment_id, h.conflicts_with LIMIT p_limit
    LOOP
        v_message := format('Host conflict: %s is also booked %s by appointment #%s; reschedule one of them (or cancel it)',
                            r.host_key, r.other_busy, r.conflicts_with);
        v_change := remediation.change_appointment(p_run_id, 'host_conflicts', p_reason, r.appointment_id,
            jsonb_build_object('calcom_sync_status', 'failed', 'requires_manual_review', true,
                               'manual_review_flagged_at', now(), 'sync_error_code', 'HOST_UNAVAILABLE',
                               'sync_error_message', v_message),
            p_dry_run, format('a.status NOT IN (''cancelled'', ''no_show'') AND a.sync_error_message IS DISTINCT FROM %L', v_message));
        CONTINUE WHEN v_change IS NULL;
        RETURN NEXT v_change;
        IF NOT p_dry_run THEN
            INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
            VALUES ('host_busy_time_no_overlap', 'appointments', r.appointment_id, v_message, 'remediation run ' || p_run_id)
            ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING
            RETURNING id INTO v_issue;
            IF v_issue IS NOT NULL THEN
                RETURN NEXT remediation.record(p_run_id, 'host_conflicts', p_reason, 'integrity_issues', v_issue, 'insert', NULL,
                    (SELECT to_jsonb(i) FROM calsync.integrity_issues i WHERE i.id = v_issue));
            END IF;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.flag_host_conflicts(boolean, text, uuid, integer) IS
    'Runbook step host_conflicts (remaining category 2): flag double-booked hosts'' appointments for a reschedule, naming the other booking.';
