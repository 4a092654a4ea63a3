CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__insert_host_time();

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_update
    AFTER UPDATE ON appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__update_host_time();

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__delete_host_time();
