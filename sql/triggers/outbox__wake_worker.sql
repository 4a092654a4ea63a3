-- NOTIFY takes a lock at commit that serialises every notifying writer, so enqueueing notifies at most
-- once per statement, and only while a worker says it is idle (calsync.outbox_listeners).
CREATE OR REPLACE FUNCTION calsync.tg_outbox__wake_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM calsync.outbox_listeners WHERE idle) THEN
        PERFORM pg_notify('calsync_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__wake_worker() IS
    'Statement trigger outbox_wake_worker: NOTIFY calsync_outbox, once per statement and only when a worker is idle.';

CREATE OR REPLACE TRIGGER outbox_wake_worker
    AFTER INSERT ON calsync.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_outbox__wake_worker();
