-- Part of deriving phases from a service's segments: the rules (the app's algorithm; never raising) are at
-- the head of sql/functions/derive_phases.sql.

CREATE OR REPLACE FUNCTION calsync.segment_number(p_segment jsonb, p_key text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN m IS NULL THEN NULL
        WHEN length(ltrim(m[1], '0')) > 10 THEN 2147483648
        ELSE least(round((coalesce(nullif(ltrim(m[1], '0'), ''), '0') || '.' || coalesce(left(m[2], 1), '0'))::numeric),
                   2147483648)::bigint
    END
    FROM (SELECT regexp_match(p_segment->>p_key, '^[ \t\n\r\f\v]*([0-9]+)(?:\.([0-9]+))?[ \t\n\r\f\v]*$') AS m) AS x
$$;
COMMENT ON FUNCTION calsync.segment_number(jsonb, text) IS
    'A segment''s number under key p_key (number or numeric string, rounded half up), else NULL; any value beyond integer range is 2147483648 (never cast, never an error).';
