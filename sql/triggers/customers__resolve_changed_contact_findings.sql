CREATE OR REPLACE TRIGGER customers_resolve_changed_contact_findings
    AFTER UPDATE OF phone ON customers
    FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone)
    EXECUTE FUNCTION calsync.tg_customers__resolve_changed_contact_findings();
