-- Deriving an appointment's phases from its service's segments, in the database.
-- The app's algorithm (AppointmentPhaseCreationService::createPhasesFromSegments): sort by `order`
-- (missing = 0), take the duration from `durationMin` (else `duration_minutes`), processing segments need
-- no staff, offsets accumulate, sequence numbered from 1. calsync also reads the legacy admin shape
-- (`duration` plus `gap_after`), where the gap becomes a processing phase; the app ignored both.
-- Whatever the segments hold, these functions never raise: a number beyond integer range makes the
-- segments unusable (segments_problem names it, and the booking is flagged), staff_required that is no
-- boolean counts as its default (true), and texts longer than the phase columns are cut.

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

CREATE OR REPLACE FUNCTION calsync.segment_minutes(p_segment jsonb, p_key text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n <= 2147483647 THEN n::int END FROM (SELECT calsync.segment_number(p_segment, p_key) AS n) AS x
$$;
COMMENT ON FUNCTION calsync.segment_minutes(jsonb, text) IS
    'A segment''s minutes under key p_key (number or numeric string), else NULL; NULL too beyond integer range (segments_problem names that).';

CREATE OR REPLACE FUNCTION calsync.segment_duration(p_segment jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n <= 2147483647 THEN n::int END
    FROM (SELECT coalesce(calsync.segment_number(p_segment, 'durationMin'),
                          calsync.segment_number(p_segment, 'duration_minutes'),
                          calsync.segment_number(p_segment, 'duration')) AS n) AS x
$$;
COMMENT ON FUNCTION calsync.segment_duration(jsonb) IS
    'A segment''s duration: durationMin (live shape), else duration_minutes, else duration (legacy shape); NULL (no positive duration) when the first one given is beyond integer range.';

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

-- timestamptz ends at 294276-12-31 23:59:59.999999 UTC: phases placed past it (or before its start) cannot
-- be stored. Compared as epoch seconds in numeric, so the check itself never overflows.
CREATE OR REPLACE FUNCTION calsync.phase_fits_time_range(p_start timestamptz, p_offset_minutes bigint,
                                                        p_duration_minutes bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT isfinite(p_start)
           OR (extract(epoch FROM p_start) + 60 * least(p_offset_minutes, p_offset_minutes + p_duration_minutes)
                   >= -210866803200
               AND extract(epoch FROM p_start) + 60 * greatest(p_offset_minutes, p_offset_minutes + p_duration_minutes)
                   < 9224318016000)
$$;
COMMENT ON FUNCTION calsync.phase_fits_time_range(timestamptz, bigint, bigint) IS
    'true when a phase at start + offset lasting duration minutes begins and ends within timestamptz''s range (an infinite start stays infinite).';

-- The rule appointment_phases_within_time_range: a composite appointment whose phases would leave
-- timestamptz's range is refused by name (SQLSTATE 23514), never with an unnamed 22008.
CREATE OR REPLACE FUNCTION calsync.refuse_phases_outside_time_range(p_appointment_id bigint, p_start timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '23514',
        CONSTRAINT = 'appointment_phases_within_time_range',
        TABLE = 'appointment_phases',
        MESSAGE = format('appointment %s starting %s: its phases would end after timestamptz''s last instant (294276-12-31 23:59:59.999999 UTC)',
                         p_appointment_id, p_start),
        HINT = 'Book the appointment at a real time.';
END
$$;
COMMENT ON FUNCTION calsync.refuse_phases_outside_time_range(bigint, timestamptz) IS
    'Rule appointment_phases_within_time_range: raises 23514 for an appointment whose phases would leave timestamptz''s range.';
