-- After UPDATE of what decides the busy time. A time change of a simple appointment without phases moves
-- its row (one statement); a time change of one with phases is left to the phases' trigger
-- (appointments_phases_follow_appointment shifts them); anything else recomputes.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.staff_id IS NOT DISTINCT FROM OLD.staff_id AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.service_id IS NOT DISTINCT FROM OLD.service_id THEN
        IF NOT NEW.is_composite AND NEW.ends_at > NEW.starts_at THEN
            UPDATE calsync.host_busy_time SET busy = tstzmultirange(tstzrange(NEW.starts_at, NEW.ends_at, '[)'))
            WHERE appointment_id = NEW.id
              AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = NEW.id);
            IF FOUND THEN
                RETURN NULL;
            END IF;
        END IF;
        IF EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = NEW.id) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM calsync.refresh_host_busy_time(ARRAY[NEW.id], false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__update_host_time() IS
    'Trigger appointments_reserve_host_time_on_change: keep the busy time of a changed appointment current.';
