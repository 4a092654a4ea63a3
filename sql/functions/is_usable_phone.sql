-- Contact rules shared by the placeholder-email trigger, the sync state, the worker's guards and the views.

CREATE OR REPLACE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_phone IS NOT NULL AND btrim(p_phone) <> '' AND p_phone NOT LIKE 'anonymous%'
$$;
COMMENT ON FUNCTION calsync.is_usable_phone(text) IS
    'A phone Cal.com accepts: not NULL, not blank, and not the voice agent''s anonymous_<ts>_<hash> stand-in.';
