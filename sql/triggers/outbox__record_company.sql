-- Each outbox event carries its appointment's company (calsync.outbox.company_id), so that the claim can share
-- the work out between companies (calsync.claim_sync_events) without reading the appointments. One primary-key
-- lookup per event, in the booking's transaction; an event whose appointment is gone gets none.
CREATE OR REPLACE FUNCTION calsync.tg_outbox__record_company() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.company_id IS NULL AND NEW.aggregatetype = 'appointment' THEN
        NEW.company_id := (SELECT a.company_id FROM appointments a WHERE a.id = NEW.aggregateid::bigint);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__record_company() IS
    'Trigger outbox_record_company: an event carries its appointment''s company (the claim''s fair share).';

-- Only for an event that comes without its company (the appointments' trigger passes it along).
CREATE OR REPLACE TRIGGER outbox_record_company
    BEFORE INSERT ON calsync.outbox
    FOR EACH ROW WHEN (NEW.company_id IS NULL AND NEW.aggregatetype = 'appointment')
    EXECUTE FUNCTION calsync.tg_outbox__record_company();
