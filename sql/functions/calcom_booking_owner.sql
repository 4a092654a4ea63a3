-- Whose booking is this Cal.com uid: the phase that holds it (a composite's booking), else the appointment that
-- holds it (a live one first). Both NULL when no appointment of ours holds it now.
CREATE OR REPLACE FUNCTION calsync.calcom_booking_owner(p_uid text, OUT appointment_id bigint, OUT phase_id bigint)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    IF p_uid IS NULL THEN
        RETURN;
    END IF;
    SELECT p.appointment_id, p.id INTO appointment_id, phase_id
    FROM appointment_phases p WHERE p.calcom_booking_uid = p_uid LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT a.id INTO appointment_id
    FROM appointments a WHERE a.calcom_v2_booking_uid = p_uid
    ORDER BY a.status IN ('cancelled', 'no_show'), a.id DESC LIMIT 1;
END
$$;
COMMENT ON FUNCTION calsync.calcom_booking_owner(text) IS
    'The appointment (and, for a composite, the phase) whose current Cal.com booking is this uid; NULLs when none is.';
