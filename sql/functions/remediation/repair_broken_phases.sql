-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Phases that are broken (doubled, without sequence or segment, or out of step with the appointment) are
-- superseded (moved to calsync.superseded_phases, not lost) and derived again from the service.
CREATE OR REPLACE FUNCTION remediation.repair_broken_phases(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_phase record;
    v_superseded bigint;
BEGIN
    FOR v_id IN SELECT a.id FROM appointments a
                WHERE a.id IN (SELECT b.appointment_id FROM remediation.broken_phases b)
                  AND a.status NOT IN ('cancelled', 'no_show') AND remediation.blocking_cause(a.id) = 'PHASE_ERROR'
                ORDER BY a.id LIMIT p_limit
    LOOP
        PERFORM 1 FROM appointments WHERE id = v_id FOR UPDATE;
        FOR v_phase IN SELECT p.*, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
        LOOP
            IF p_dry_run THEN
                RETURN NEXT ('broken_phases', 'appointment_phases', v_phase.id, 'delete', v_phase.image, NULL)::remediation.change;
                CONTINUE;
            END IF;
            INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                                   segment_name, staff_required, start_time, end_time, calcom_booking_id,
                                                   calcom_booking_uid, calcom_sync_status, reason)
            VALUES (v_phase.id, v_id, v_phase.sequence_order, v_phase.phase_type, v_phase.segment_key, v_phase.segment_name,
                    v_phase.staff_required, v_phase.start_time, v_phase.end_time, v_phase.calcom_booking_id,
                    v_phase.calcom_booking_uid, v_phase.calcom_sync_status, 'invalid phases: derived again by remediation')
            RETURNING id INTO v_superseded;
            DELETE FROM appointment_phases WHERE id = v_phase.id;
            RETURN NEXT remediation.record(p_run_id, 'broken_phases', p_reason, 'appointment_phases', v_phase.id, 'delete',
                                           v_phase.image, jsonb_build_object('superseded_id', v_superseded));
        END LOOP;
        IF NOT p_dry_run THEN
            PERFORM calsync.create_missing_phases(v_id, 'remediation run ' || p_run_id);
            FOR v_phase IN SELECT p.id, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
            LOOP
                RETURN NEXT remediation.record(p_run_id, 'broken_phases', p_reason, 'appointment_phases', v_phase.id,
                                               'insert', NULL, v_phase.image);
            END LOOP;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.repair_broken_phases(boolean, text, uuid, integer) IS
    'Runbook step broken_phases: supersede invalid phases (kept in calsync.superseded_phases) and derive them again.';
