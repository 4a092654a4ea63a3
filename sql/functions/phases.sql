-- Deriving an appointment's phases from its service's segments, in the database.
-- The app's algorithm (AppointmentPhaseCreationService::createPhasesFromSegments): sort by `order`
-- (missing = 0), take the duration from `durationMin` (else `duration_minutes`), processing segments need
-- no staff, offsets accumulate, sequence numbered from 1. calsync also reads the legacy admin shape
-- (`duration` plus `gap_after`), where the gap becomes a processing phase; the app ignored both.

CREATE OR REPLACE FUNCTION calsync.segment_minutes(p_segment jsonb, p_key text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_segment->>p_key ~ '^\s*[0-9]+(\.[0-9]+)?\s*$' THEN round((p_segment->>p_key)::numeric)::int END
$$;
COMMENT ON FUNCTION calsync.segment_minutes(jsonb, text) IS
    'A segment''s minutes under key p_key (number or numeric string), else NULL.';

CREATE OR REPLACE FUNCTION calsync.segment_duration(p_segment jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(calsync.segment_minutes(p_segment, 'durationMin'),
                    calsync.segment_minutes(p_segment, 'duration_minutes'),
                    calsync.segment_minutes(p_segment, 'duration'))
$$;
COMMENT ON FUNCTION calsync.segment_duration(jsonb) IS
    'A segment''s duration: durationMin (live shape), else duration_minutes, else duration (legacy shape).';

CREATE OR REPLACE FUNCTION calsync.segments_problem(p_segments jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_segments IS NULL OR p_segments = 'null'::jsonb THEN 'the service has no segments'
        WHEN jsonb_typeof(p_segments) <> 'array' THEN 'the service''s segments are not a JSON array'
        WHEN jsonb_array_length(p_segments) = 0 THEN 'the service''s segments are empty'
        ELSE (SELECT format('segment %s (%s) has no positive duration', coalesce(e.value->>'key', '#' || e.idx),
                            coalesce(e.value->>'name', '?'))
              FROM jsonb_array_elements(p_segments) WITH ORDINALITY AS e(value, idx)
              WHERE jsonb_typeof(e.value) <> 'object' OR coalesce(calsync.segment_duration(e.value), 0) <= 0
              ORDER BY e.idx LIMIT 1)
    END
$$;
COMMENT ON FUNCTION calsync.segments_problem(jsonb) IS
    'NULL when phases can be derived from these segments, else why not (in words).';

CREATE OR REPLACE FUNCTION calsync.derive_phases(p_segments jsonb)
RETURNS TABLE (sequence_order integer, phase_type text, segment_name text, segment_key text,
               start_offset_minutes integer, duration_minutes integer, staff_required boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH seg AS (
        SELECT e.value AS s, e.idx,
               coalesce(calsync.segment_minutes(e.value, 'order'), 0) AS ord
        FROM jsonb_array_elements(CASE WHEN calsync.segments_problem(p_segments) IS NULL THEN p_segments
                                       ELSE '[]'::jsonb END) WITH ORDINALITY AS e(value, idx)
    ), expanded AS (
        SELECT ord, idx, 0 AS sub, s->>'key' AS key, s->>'name' AS name, calsync.segment_duration(s) AS minutes,
               s->>'type' = 'processing' AS processing,
               CASE WHEN s->>'type' = 'processing' THEN false
                    ELSE coalesce((s->>'staff_required')::boolean, true) END AS staff
        FROM seg
        UNION ALL
        SELECT ord, idx, 1, coalesce(s->>'key', '#' || idx) || '_gap', coalesce(s->>'name', '') || ' (Einwirkzeit)',
               calsync.segment_minutes(s, 'gap_after'), true, false
        FROM seg
        WHERE coalesce(calsync.segment_minutes(s, 'gap_after'), 0) > 0
    )
    SELECT (row_number() OVER w)::int,
           CASE WHEN processing THEN 'processing' WHEN row_number() OVER w = 1 THEN 'initial' ELSE 'final' END,
           name, key,
           (sum(minutes) OVER w - minutes)::int,
           minutes, staff
    FROM expanded
    WINDOW w AS (ORDER BY ord, idx, sub ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ORDER BY 1
$$;
COMMENT ON FUNCTION calsync.derive_phases(jsonb) IS
    'The phases of a composite service''s segments (offsets relative to the start); none when segments_problem() is not NULL.';
