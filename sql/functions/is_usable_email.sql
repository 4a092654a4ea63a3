-- Contact rules shared by the placeholder-email trigger, the sync state, the worker's guards and the views.

-- Cal.com's own rule (emailSchema of packages/lib/emailSchema.ts, applied by the booking responses schema to a
-- required e-mail): at most 254 characters and
--   /^(?!\.)(?!.*\.\.)([A-Z0-9_+-\.']*)[A-Z0-9_+'-]@([A-Z0-9][A-Z0-9\-]*\.)+[A-Z]{2,}$/i
-- Spelled out here: `+-\.` in the first class is the range + .. . (so a comma is allowed, not as the last
-- character of the local part); /i folds ASCII letters only, so both cases are written out and `~` stays
-- case-sensitive (no locale folding); `$` matches only at the very end; nothing is trimmed. The worker's copy is
-- worker/sync/contacts.py calcom_accepts_email; tests/test_contacts.py compares the two with the simulator's.
CREATE OR REPLACE FUNCTION calsync.is_usable_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND length(p_email) <= 254
       AND p_email ~ '^(?!\.)(?!.*\.\.)[A-Za-z0-9_+,.''-]*[A-Za-z0-9_+''-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$'
$$;
COMMENT ON FUNCTION calsync.is_usable_email(text) IS
    'An e-mail Cal.com accepts for a booking: its emailSchema rule exactly (the regex, at most 254 characters, nothing trimmed). NULL is not.';
