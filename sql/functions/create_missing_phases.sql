-- Derive the phases of a live composite appointment that has none, from its service's segments; when
-- the segments are unusable, flag it instead: calcom_sync_status failed, requires_manual_review,
-- sync_error_code COMPOSITE_FAILURE, and a row in calsync.integrity_issues. Phases that would end after
-- timestamptz's range are refused by the rule appointment_phases_within_time_range (23514). Used by the
-- rule appointments_composite_has_phases, its backfill, and the remediation runbook.
CREATE OR REPLACE FUNCTION calsync.create_missing_phases(p_appointment_id bigint, p_found_by text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_appt appointments%ROWTYPE;
    v_segments jsonb;
    v_service text;
    v_problem text;
    v_count integer;
BEGIN
    IF EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = p_appointment_id) THEN
        RETURN 0;  -- the common case, without taking a lock
    END IF;
    -- the row lock serialises this with writers of the same appointment (phase inserts take KEY SHARE)
    SELECT * INTO v_appt FROM appointments WHERE id = p_appointment_id FOR UPDATE;
    IF NOT FOUND OR NOT v_appt.is_composite OR v_appt.status IN ('cancelled', 'no_show')
       OR EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = p_appointment_id) THEN
        RETURN 0;
    END IF;
    SELECT segments, name INTO v_segments, v_service FROM services WHERE id = v_appt.service_id;
    v_problem := calsync.segments_problem(v_segments);
    IF v_problem IS NULL THEN
        IF EXISTS (SELECT 1 FROM calsync.derive_phases(v_segments) AS d
                   WHERE NOT calsync.phase_fits_time_range(v_appt.starts_at, d.start_offset_minutes, d.duration_minutes)) THEN
            PERFORM calsync.refuse_phases_outside_time_range(p_appointment_id, v_appt.starts_at);
        END IF;
        INSERT INTO appointment_phases (appointment_id, phase_type, segment_name, segment_key, sequence_order,
                                        start_offset_minutes, duration_minutes, staff_required, start_time,
                                        end_time, calcom_sync_status)
        SELECT p_appointment_id, d.phase_type, d.segment_name, d.segment_key, d.sequence_order,
               d.start_offset_minutes, d.duration_minutes, d.staff_required,
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes),
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes) + make_interval(mins => d.duration_minutes),
               'pending'
        FROM calsync.derive_phases(v_segments) AS d;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        RETURN v_count;
    END IF;
    UPDATE appointments
    SET calcom_sync_status = 'failed',
        requires_manual_review = true,
        manual_review_flagged_at = coalesce(manual_review_flagged_at, now()),
        sync_error_code = 'COMPOSITE_FAILURE',
        sync_error_message = format('composite appointment without phases: %s (service %s, %s)',
                                    v_problem, v_appt.service_id, v_service)
    WHERE id = p_appointment_id;
    INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
    VALUES ('appointments_composite_has_phases', 'appointments', p_appointment_id,
            format('no phases could be derived: %s (service %s, %s)', v_problem, v_appt.service_id, v_service),
            p_found_by)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING;
    RETURN 0;
END
$$;
COMMENT ON FUNCTION calsync.create_missing_phases(bigint, text) IS
    'Derive the phases of a live composite appointment that has none, or flag it for manual review when its service''s segments are unusable. Returns the phases created.';
