-- Whether a customer has an e-mail at all, usable or not. Only such a customer keeps what is stored: the
-- placeholder-email trigger fills customer_<id>@<domain> only where this is false (and there is no usable phone).
-- Blank means spaces only (btrim), as everywhere in these rules.
CREATE OR REPLACE FUNCTION calsync.has_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND btrim(p_email) <> ''
$$;
COMMENT ON FUNCTION calsync.has_email(text) IS
    'An e-mail is stored at all: not NULL and not blank. Whether Cal.com accepts it is calsync.is_usable_email.';
