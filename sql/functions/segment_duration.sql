-- Part of deriving phases from a service's segments: the rules (the app's algorithm; never raising) are at
-- the head of sql/functions/derive_phases.sql.

CREATE OR REPLACE FUNCTION calsync.segment_duration(p_segment jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n <= 2147483647 THEN n::int END
    FROM (SELECT coalesce(calsync.segment_number(p_segment, 'durationMin'),
                          calsync.segment_number(p_segment, 'duration_minutes'),
                          calsync.segment_number(p_segment, 'duration')) AS n) AS x
$$;
COMMENT ON FUNCTION calsync.segment_duration(jsonb) IS
    'A segment''s duration: durationMin (live shape), else duration_minutes, else duration (legacy shape); NULL (no positive duration) when the first one given is beyond integer range.';
