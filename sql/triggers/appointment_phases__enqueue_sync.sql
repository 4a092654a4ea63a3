CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_update
    AFTER UPDATE ON appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();
