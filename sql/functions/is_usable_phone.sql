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
