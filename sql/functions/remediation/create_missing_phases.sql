-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Fix 2: live composite appointments without phases get them from their service's segments (or are
-- flagged when the segments are unusable). Appointments that have phases are skipped (#667, #673).
CREATE OR REPLACE FUNCTION remediation.create_missing_phases(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_before jsonb;
    v_after jsonb;
    v_phase record;
BEGIN
    FOR v_id IN SELECT a.id FROM appointments a
                WHERE a.is_composite AND a.status NOT IN ('cancelled', 'no_show')
                  AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
                  AND NOT EXISTS (SELECT 1 FROM calsync.integrity_issues i  -- flagged already: unusable segments
                                  WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments'
                                    AND i.row_id = a.id AND i.resolved_at IS NULL)
                ORDER BY a.id LIMIT p_limit
    LOOP
        v_before := remediation.appointment_image(v_id);
        IF p_dry_run THEN
            RETURN NEXT ('missing_phases', 'appointments', v_id, 'update', v_before,
                         v_before || jsonb_build_object('phases', (SELECT jsonb_agg(to_jsonb(d)) FROM appointments a
                             JOIN services s ON s.id = a.service_id, calsync.derive_phases(s.segments) d WHERE a.id = v_id)))::remediation.change;
            CONTINUE;
        END IF;
        CONTINUE WHEN calsync.create_missing_phases(v_id, 'remediation run ' || p_run_id) = 0
                      AND remediation.appointment_image(v_id) = v_before;
        FOR v_phase IN SELECT p.id, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
        LOOP
            RETURN NEXT remediation.record(p_run_id, 'missing_phases', p_reason, 'appointment_phases', v_phase.id, 'insert',
                                           NULL, v_phase.image);
        END LOOP;
        v_after := remediation.appointment_image(v_id);
        IF v_after <> v_before THEN  -- flagged: the segments are unusable
            RETURN NEXT remediation.record(p_run_id, 'missing_phases', p_reason, 'appointments', v_id, 'update', v_before, v_after);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.create_missing_phases(boolean, text, uuid, integer) IS
    'Runbook step missing_phases (incident fix 2): derive the phases of live composite appointments that have none.';
