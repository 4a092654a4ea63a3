-- A finding is about a value: once the customer's phone changes, its open finding no longer describes what is
-- stored, so it is resolved; the worker checks the new phone at the customer's next sync (and records it again if
-- Cal.com would refuse it too).
CREATE OR REPLACE FUNCTION calsync.tg_customers__resolve_changed_contact_findings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE calsync.integrity_issues
    SET resolved_at = now(), resolved_by = 'customers_resolve_changed_contact_findings',
        resolution = 'the phone changed: checked again at the next sync'
    WHERE rule = 'customers_phone_valid_for_calcom' AND table_name = 'customers' AND row_id = NEW.id
      AND resolved_at IS NULL;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_customers__resolve_changed_contact_findings() IS
    'Trigger customers_resolve_changed_contact_findings: a changed phone resolves its open phone finding.';

CREATE OR REPLACE TRIGGER customers_resolve_changed_contact_findings
    AFTER UPDATE OF phone ON customers
    FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone)
    EXECUTE FUNCTION calsync.tg_customers__resolve_changed_contact_findings();
