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
