-- Rule: a customer always has a contact Cal.com accepts. Saved with no e-mail at all (NULL or blank: calsync.is_blank) and no
-- usable phone, a customer gets customer_<id>@<domain> and email_is_placeholder = true; a real e-mail given
-- later replaces it and clears the flag. Blank e-mails become NULL (they collided on the unique index).
-- An e-mail that is there but that Cal.com refuses (calsync.is_usable_email) is kept as it is: it is the
-- customer's data, to be corrected (remediation.customers_with_invalid_contact); meanwhile the worker books with
-- the placeholder in its place (calsync.sync_customer.placeholder_email) and never sends it.
CREATE OR REPLACE FUNCTION calsync.tg_customers__fill_placeholder_email() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_placeholder text := calsync.placeholder_email(NEW.id);
BEGIN
    IF NEW.email IS NOT NULL AND calsync.is_blank(NEW.email) THEN
        NEW.email := NULL;
    END IF;
    IF calsync.has_email(NEW.email) THEN  -- kept, whether Cal.com accepts it or not
        NEW.email_is_placeholder := (NEW.email = v_placeholder)
            OR (TG_OP = 'UPDATE' AND OLD.email_is_placeholder AND NEW.email = OLD.email);
    ELSIF calsync.is_usable_phone(NEW.phone) THEN
        NEW.email_is_placeholder := false;
    ELSE
        NEW.email := v_placeholder;
        NEW.email_is_placeholder := true;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_customers__fill_placeholder_email() IS
    'Trigger customers_fill_placeholder_email: no e-mail at all (NULL or blank) and no usable phone gives customer_<id>@<domain>; any other e-mail is kept.';

CREATE OR REPLACE TRIGGER customers_fill_placeholder_email
    BEFORE INSERT OR UPDATE OF email, phone ON customers
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_customers__fill_placeholder_email();
