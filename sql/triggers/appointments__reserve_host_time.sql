-- After INSERT of a simple live appointment with staff (the trigger's WHEN): its whole time, one row.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__reserve_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO calsync.host_busy_time (appointment_id, staff_id, host_id, busy)
    SELECT NEW.id, NEW.staff_id, calsync.host_id(s.calcom_user_id, NEW.staff_id),
           tstzmultirange(tstzrange(NEW.starts_at, NEW.ends_at, '[)'))
    FROM staff s WHERE s.id = NEW.staff_id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time() IS
    'Trigger appointments_reserve_host_time: a new simple appointment reserves its host''s time.';

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

-- A deleted appointment frees its host (the table has no foreign key: its check would lock the
-- appointment row on every reservation).
CREATE OR REPLACE FUNCTION calsync.tg_appointments__release_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM calsync.host_busy_time b USING old_appointments o WHERE b.appointment_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__release_host_time() IS
    'Statement trigger appointments_release_host_time: deleted appointments free their busy time.';

CREATE OR REPLACE TRIGGER appointments_reserve_host_time
    AFTER INSERT ON appointments
    FOR EACH ROW
    WHEN (NOT NEW.is_composite AND NEW.staff_id IS NOT NULL AND NEW.status NOT IN ('cancelled', 'no_show')
          AND NEW.ends_at > NEW.starts_at)
    EXECUTE FUNCTION calsync.tg_appointments__reserve_host_time();

CREATE OR REPLACE TRIGGER appointments_reserve_host_time_on_change
    AFTER UPDATE OF starts_at, ends_at, staff_id, status, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.ends_at IS DISTINCT FROM OLD.ends_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.status IS DISTINCT FROM OLD.status
          OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__update_host_time();

CREATE OR REPLACE TRIGGER appointments_release_host_time
    AFTER DELETE ON appointments REFERENCING OLD TABLE AS old_appointments
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointments__release_host_time();
