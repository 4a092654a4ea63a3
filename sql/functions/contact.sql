-- Contact rules shared by the placeholder-email trigger, the worker's pre-flight guard and the views.

CREATE OR REPLACE FUNCTION calsync.is_usable_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND btrim(p_email) <> ''
$$;
COMMENT ON FUNCTION calsync.is_usable_email(text) IS 'An e-mail Cal.com can be given: not NULL and not blank.';

CREATE OR REPLACE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_phone IS NOT NULL AND btrim(p_phone) <> '' AND p_phone NOT LIKE 'anonymous%'
$$;
COMMENT ON FUNCTION calsync.is_usable_phone(text) IS
    'A phone Cal.com accepts: not NULL, not blank, and not the voice agent''s anonymous_<ts>_<hash> stand-in.';

CREATE OR REPLACE FUNCTION calsync.placeholder_email(p_customer_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'customer_' || p_customer_id || '@'
           || coalesce((SELECT value FROM calsync.settings WHERE key = 'placeholder_email_domain'), 'placeholder.invalid')
$$;
COMMENT ON FUNCTION calsync.placeholder_email(bigint) IS
    'customer_<id>@<domain>, the domain from calsync.settings placeholder_email_domain (default placeholder.invalid).';
