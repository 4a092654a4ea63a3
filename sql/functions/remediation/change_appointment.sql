-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- One appointment change of a step: lock, re-check (p_still: a condition on the locked row), apply, log.
CREATE OR REPLACE FUNCTION remediation.change_appointment(p_run_id uuid, p_step text, p_reason text, p_id bigint,
                                                          p_changes jsonb, p_dry_run boolean, p_still text)
RETURNS remediation.change
LANGUAGE plpgsql AS $$
DECLARE
    v_ok boolean;
    v_before jsonb;
BEGIN
    EXECUTE format('SELECT %s FROM appointments a WHERE a.id = $1 FOR UPDATE', p_still) INTO v_ok USING p_id;
    IF NOT coalesce(v_ok, false) THEN
        RETURN NULL;  -- changed meanwhile: nothing to do any more
    END IF;
    v_before := remediation.appointment_image(p_id);
    IF p_dry_run THEN
        RETURN (p_step, 'appointments', p_id, 'update', v_before, v_before || p_changes)::remediation.change;
    END IF;
    PERFORM remediation.apply_appointment_image(p_id, p_changes);
    RETURN remediation.record(p_run_id, p_step, p_reason, 'appointments', p_id, 'update', v_before,
                              remediation.appointment_image(p_id));
END
$$;
COMMENT ON FUNCTION remediation.change_appointment(uuid, text, text, bigint, jsonb, boolean, text) IS
    'Lock an appointment, re-check the step''s condition, apply the change and log before/after (or only report it in a dry run).';
