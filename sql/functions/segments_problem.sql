-- Part of deriving phases from a service's segments: the rules (the app's algorithm; never raising) are at
-- the head of sql/functions/derive_phases.sql.

-- Usable segments: a JSON array of objects, each with a positive duration and numbers within integer range,
-- lasting at most 2147483647 minutes in total (durations and gaps, summed in bigint), so that every offset
-- and phase end fits the phase columns (integer).
CREATE OR REPLACE FUNCTION calsync.segments_problem(p_segments jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_segments IS NULL OR p_segments = 'null'::jsonb THEN 'the service has no segments'
        WHEN jsonb_typeof(p_segments) <> 'array' THEN 'the service''s segments are not a JSON array'
        WHEN jsonb_array_length(p_segments) = 0 THEN 'the service''s segments are empty'
        ELSE coalesce(
            (SELECT format('segment %s (%s) %s', coalesce(e.value->>'key', '#' || e.idx), coalesce(e.value->>'name', '?'),
                           CASE WHEN jsonb_typeof(e.value) = 'object'
                                     AND coalesce(calsync.segment_number(e.value, 'durationMin'),
                                                  calsync.segment_number(e.value, 'duration_minutes'),
                                                  calsync.segment_number(e.value, 'duration')) > 2147483647
                                THEN 'has a duration beyond integer range'
                                WHEN jsonb_typeof(e.value) <> 'object' OR coalesce(calsync.segment_duration(e.value), 0) <= 0
                                THEN 'has no positive duration'
                                WHEN calsync.segment_number(e.value, 'order') > 2147483647 THEN 'has an order beyond integer range'
                                ELSE 'has a gap_after beyond integer range' END)
             FROM jsonb_array_elements(p_segments) WITH ORDINALITY AS e(value, idx)
             WHERE jsonb_typeof(e.value) <> 'object' OR coalesce(calsync.segment_duration(e.value), 0) <= 0
                OR calsync.segment_number(e.value, 'order') > 2147483647
                OR calsync.segment_number(e.value, 'gap_after') > 2147483647
             ORDER BY e.idx LIMIT 1),
            (SELECT format('the segments last %s minutes in total, beyond integer range', t.total)
             FROM (SELECT sum(calsync.segment_duration(e.value)::bigint
                              + greatest(coalesce(calsync.segment_minutes(e.value, 'gap_after'), 0), 0)) AS total
                   FROM jsonb_array_elements(p_segments) AS e(value)) AS t
             WHERE t.total > 2147483647))
    END
$$;
COMMENT ON FUNCTION calsync.segments_problem(jsonb) IS
    'NULL when phases can be derived from these segments, else why not (in words): no positive duration, a number beyond integer range, a total beyond integer range.';
