-- New phases (one pass per statement, however many phases it inserts): their appointments are busy in
-- their staff-required phases instead of their whole time, one row each.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__insert_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM new_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__insert_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_insert: new phases reserve their host''s time.';

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

-- Deleted phases: recompute their appointments (which may now be busy for their whole time).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__delete_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM old_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__delete_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_delete: deleted phases free their time.';

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__insert_host_time();

-- A row trigger: the app rewrites phases it has not changed, and the statements that change no row
-- (a simple appointment has no phases to follow its move) fire no statement trigger's queries this way.
CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_update
    AFTER UPDATE OF appointment_id, staff_required, start_time, end_time ON appointment_phases
    FOR EACH ROW
    WHEN (NEW.appointment_id IS DISTINCT FROM OLD.appointment_id
          OR ((NEW.staff_required OR OLD.staff_required)
              AND (NEW.staff_required IS DISTINCT FROM OLD.staff_required OR NEW.start_time IS DISTINCT FROM OLD.start_time
                   OR NEW.end_time IS DISTINCT FROM OLD.end_time)))
    EXECUTE FUNCTION calsync.tg_appointment_phases__update_host_time();

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__delete_host_time();
