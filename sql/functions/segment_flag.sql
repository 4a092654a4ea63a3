-- Part of deriving phases from a service's segments: the rules (the app's algorithm; never raising) are at
-- the head of sql/functions/derive_phases.sql.

-- boolin's literals (t, true, yes, on, 1, f, no, off, 0 …; case and ASCII whitespace aside), read without
-- a cast that could fail: PostgreSQL 15 has no pg_input_is_valid().
CREATE OR REPLACE FUNCTION calsync.segment_flag(p_segment jsonb, p_key text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN v ~ '^[ \t\n\r\f\v]*(t|tr|tru|true|y|ye|yes|on|1)[ \t\n\r\f\v]*$' THEN true
        WHEN v ~ '^[ \t\n\r\f\v]*(f|fa|fal|fals|false|n|no|of|off|0)[ \t\n\r\f\v]*$' THEN false
    END
    FROM (SELECT translate(p_segment->>p_key, 'TRUEYSONFAL', 'trueysonfal') AS v) AS x
$$;
COMMENT ON FUNCTION calsync.segment_flag(jsonb, text) IS
    'A segment''s flag under key p_key: a JSON boolean or a boolean literal as PostgreSQL reads it, else NULL (the caller''s default).';
