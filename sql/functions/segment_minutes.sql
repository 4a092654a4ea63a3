-- Part of deriving phases from a service's segments: the rules (the app's algorithm; never raising) are at
-- the head of sql/functions/derive_phases.sql.

CREATE OR REPLACE FUNCTION calsync.segment_minutes(p_segment jsonb, p_key text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n <= 2147483647 THEN n::int END FROM (SELECT calsync.segment_number(p_segment, p_key) AS n) AS x
$$;
COMMENT ON FUNCTION calsync.segment_minutes(jsonb, text) IS
    'A segment''s minutes under key p_key (number or numeric string), else NULL; NULL too beyond integer range (segments_problem names that).';
