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
