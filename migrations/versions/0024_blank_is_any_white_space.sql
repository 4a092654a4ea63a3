-- Frozen SQL of revision 0024 (never edit; sql/ holds the current definitions).

-- name: functions
-- from: sql/functions/is_blank.sql
-- from: sql/functions/has_email.sql
-- from: sql/functions/is_usable_phone.sql
-- from: sql/functions/placeholder_email_backfill_batch.sql
-- from: sql/triggers/customers__fill_placeholder_email.sql
-- Blank means nothing but white space, as Unicode (and Python's str.isspace) defines it: ASCII \t \n \v \f \r,
-- the separators U+001C–U+001F, space, NEL U+0085, no-break space U+00A0, U+1680, U+2000–U+200A, the line and
-- paragraph separators U+2028/U+2029, U+202F, U+205F and the ideographic space U+3000. btrim() trims only ' ',
-- so a tab or a no-break space from a copied form field counted as a contact (fuzz finding blank_is_only_spaces).
-- NULL is blank too.
CREATE OR REPLACE FUNCTION calsync.is_blank(p_text text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_text IS NULL
        OR p_text ~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
$$;
COMMENT ON FUNCTION calsync.is_blank(text) IS
    'NULL, or nothing but Unicode white space (tab, newline, no-break space, ideographic space, ...), not only '' ''.';

-- Whether a customer has an e-mail at all, usable or not. Only such a customer keeps what is stored: the
-- placeholder-email trigger fills customer_<id>@<domain> only where this is false (and there is no usable phone).
-- Blank is calsync.is_blank (any Unicode white space), as everywhere in these rules.
CREATE OR REPLACE FUNCTION calsync.has_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- the white space of calsync.is_blank, written out (see is_usable_phone.sql)
    SELECT p_email IS NOT NULL AND p_email !~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
$$;
COMMENT ON FUNCTION calsync.has_email(text) IS
    'An e-mail is stored at all: not NULL and not blank. Whether Cal.com accepts it is calsync.is_usable_email.';

-- Contact rules shared by the placeholder-email trigger, the sync state, the worker's guards and the views.

CREATE OR REPLACE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- the white space of calsync.is_blank, written out: the remediation views inline this function as the reader,
    -- who has no USAGE on schema calsync to call is_blank by name
    SELECT p_phone IS NOT NULL
       AND p_phone !~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
       AND p_phone !~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*anonymous'
$$;
COMMENT ON FUNCTION calsync.is_usable_phone(text) IS
    'A phone Cal.com accepts: not NULL, not blank (calsync.is_blank: any white space), and not the voice agent''s anonymous_<ts>_<hash> stand-in.';

-- Backfill in batches (by id): touching email fires the trigger customers_fill_placeholder_email
-- (sql/triggers/customers__fill_placeholder_email.sql), the one place the rule lives.
CREATE OR REPLACE FUNCTION calsync.placeholder_email_backfill_batch(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
BEGIN
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM customers WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE customers SET email = email
    WHERE id > p_after_id AND id <= v_last
      AND ((NOT calsync.has_email(email) AND NOT calsync.is_usable_phone(phone))
           OR (email IS NOT NULL AND calsync.is_blank(email))
           OR (email = calsync.placeholder_email(id) AND NOT email_is_placeholder));
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.placeholder_email_backfill_batch(bigint, integer) IS
    'One batch of the placeholder-email backfill: customers with id in (after_id, returned id]; NULL when done.';

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

-- name: previous_functions
-- The definitions before this revision, as revisions 0006 and 0015 froze them.
-- Whether a customer has an e-mail at all, usable or not. Only such a customer keeps what is stored: the
-- placeholder-email trigger fills customer_<id>@<domain> only where this is false (and there is no usable phone).
-- Blank means spaces only (btrim), as everywhere in these rules.
CREATE OR REPLACE FUNCTION calsync.has_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND btrim(p_email) <> ''
$$;
COMMENT ON FUNCTION calsync.has_email(text) IS
    'An e-mail is stored at all: not NULL and not blank. Whether Cal.com accepts it is calsync.is_usable_email.';

-- Contact rules shared by the placeholder-email trigger, the sync state, the worker's guards and the views.

CREATE OR REPLACE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_phone IS NOT NULL AND btrim(p_phone) <> '' AND p_phone NOT LIKE 'anonymous%'
$$;
COMMENT ON FUNCTION calsync.is_usable_phone(text) IS
    'A phone Cal.com accepts: not NULL, not blank, and not the voice agent''s anonymous_<ts>_<hash> stand-in.';

-- Backfill in batches (by id): touching email fires the trigger customers_fill_placeholder_email
-- (sql/triggers/customers__fill_placeholder_email.sql), the one place the rule lives.
CREATE OR REPLACE FUNCTION calsync.placeholder_email_backfill_batch(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
BEGIN
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM customers WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE customers SET email = email
    WHERE id > p_after_id AND id <= v_last
      AND ((NOT calsync.has_email(email) AND NOT calsync.is_usable_phone(phone))
           OR (email IS NOT NULL AND btrim(email) = '')
           OR (email = calsync.placeholder_email(id) AND NOT email_is_placeholder));
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.placeholder_email_backfill_batch(bigint, integer) IS
    'One batch of the placeholder-email backfill: customers with id in (after_id, returned id]; NULL when done.';

-- Rule: a customer always has a contact Cal.com accepts. Saved with no e-mail at all (NULL or blank) and no
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
    IF NEW.email IS NOT NULL AND btrim(NEW.email) = '' THEN
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

-- name: drop
DROP FUNCTION calsync.is_blank(text);
