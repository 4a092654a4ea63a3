CREATE OR REPLACE TRIGGER outbox_record_company
    BEFORE INSERT ON calsync.outbox
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_outbox__record_company();
