-- A changed phase (a row trigger whose WHEN lets through only changes of what decides the busy time, so
-- the app's unchanged rewrites of phases and its statements that change no row cost nothing): recompute
-- its appointment (and the one it left). The phases of one moved appointment all fire after their
-- statement; the first recomputes the row, the others find it current and write nothing.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY[OLD.appointment_id, NEW.appointment_id], false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__update_host_time() IS
    'Trigger appointment_phases_reserve_host_time_update: keep a changed phase''s busy time current.';
