CREATE OR REPLACE TRIGGER outbox_wake_worker
    AFTER INSERT ON calsync.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_outbox__wake_worker();
