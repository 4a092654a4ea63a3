-- Deriving an appointment's phases from its service's segments, in the database.
-- The app's algorithm (AppointmentPhaseCreationService::createPhasesFromSegments): sort by `order`
-- (missing = 0), take the duration from `durationMin` (else `duration_minutes`), processing segments need
-- no staff, offsets accumulate, sequence numbered from 1. calsync also reads the legacy admin shape
-- (`duration` plus `gap_after`), where the gap becomes a processing phase; the app ignored both.
-- Whatever the segments hold, these functions never raise: a number beyond integer range makes the
-- segments unusable (segments_problem names it, and the booking is flagged), staff_required that is no
-- boolean counts as its default (true), and texts longer than the phase columns are cut.

-- Texts are cut to the phase columns: segment_key varchar(50) (a gap's key keeps its '_gap'), segment_name
-- varchar(255) (a gap's name keeps its ' (Einwirkzeit)').
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
        SELECT ord, idx, 0 AS sub, left(s->>'key', 50) AS key, left(s->>'name', 255) AS name,
               calsync.segment_duration(s) AS minutes,
               s->>'type' = 'processing' AS processing,
               CASE WHEN s->>'type' = 'processing' THEN false
                    ELSE coalesce(calsync.segment_flag(s, 'staff_required'), true) END AS staff
        FROM seg
        UNION ALL
        SELECT ord, idx, 1, left(coalesce(s->>'key', '#' || idx), 46) || '_gap',
               left(coalesce(s->>'name', ''), 241) || ' (Einwirkzeit)',
               calsync.segment_minutes(s, 'gap_after'), true, false
        FROM seg
        WHERE coalesce(calsync.segment_minutes(s, 'gap_after'), 0) > 0
    )
    SELECT (row_number() OVER w)::int,
           CASE WHEN processing THEN 'processing' WHEN row_number() OVER w = 1 THEN 'initial' ELSE 'final' END,
           name, key,
           (sum(minutes::bigint) OVER w - minutes)::int,
           minutes, staff
    FROM expanded
    WINDOW w AS (ORDER BY ord, idx, sub ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ORDER BY 1
$$;
COMMENT ON FUNCTION calsync.derive_phases(jsonb) IS
    'The phases of a composite service''s segments (offsets relative to the start); none when segments_problem() is not NULL. Keys and names are cut to the phase columns.';
