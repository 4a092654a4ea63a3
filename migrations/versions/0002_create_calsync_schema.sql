-- Frozen SQL of revision 0002 (never edit; sql/ holds the current definitions).

-- name: schema
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
        CREATE EXTENSION btree_gist;
        COMMENT ON EXTENSION btree_gist IS 'created by calsync revision 0002';
    END IF;
END
$$;
CREATE SCHEMA calsync;
COMMENT ON SCHEMA calsync IS 'calsync: integrity rules, outbox and sync bookkeeping for the appointment tables';

CREATE TABLE calsync.settings (
    key          text PRIMARY KEY,
    value        text NOT NULL,
    description  text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE calsync.settings IS 'Settings the calsync rules read; change a value with UPDATE.';
INSERT INTO calsync.settings (key, value, description) VALUES
    ('placeholder_email_domain', 'placeholder.invalid',
     'Domain of the customer_<id>@<domain> placeholder given to customers with no usable e-mail or phone.');

CREATE TABLE calsync.integrity_issues (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule         text NOT NULL,
    table_name   text NOT NULL,
    row_id       bigint NOT NULL,
    detail       text NOT NULL,
    found_by     text NOT NULL,
    found_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolved_by  text,
    resolution   text,
    CONSTRAINT integrity_issues_resolution_needs_time CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX integrity_issues_one_open_per_rule_and_row
    ON calsync.integrity_issues (rule, table_name, row_id) WHERE resolved_at IS NULL;
COMMENT ON TABLE calsync.integrity_issues IS
    'Rows known to break a rule: listed by a pre-flight (new-rows-only mode), by a rule that could not repair a row, or by remediation. Resolved, never deleted.';
COMMENT ON COLUMN calsync.integrity_issues.rule IS 'name of the rule (constraint, index or trigger) the row breaks';
COMMENT ON COLUMN calsync.integrity_issues.row_id IS 'id of the offending row in table_name';
COMMENT ON COLUMN calsync.integrity_issues.detail IS 'what is wrong with the row, in words';
COMMENT ON COLUMN calsync.integrity_issues.found_by IS 'what found it (a revision''s pre-flight, a trigger, a runbook step)';
COMMENT ON COLUMN calsync.integrity_issues.resolved_at IS 'when it was resolved; NULL while open';

CREATE TABLE calsync.superseded_phases (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phase_id            bigint NOT NULL,
    appointment_id      bigint NOT NULL,
    sequence_order      bigint,
    phase_type          text,
    segment_key         text,
    segment_name        text,
    staff_required      boolean,
    start_time          timestamptz,
    end_time            timestamptz,
    calcom_booking_id   bigint,
    calcom_booking_uid  text,
    calcom_sync_status  text,
    superseded_at       timestamptz NOT NULL DEFAULT now(),
    reason              text NOT NULL,
    calcom_cancelled_at timestamptz
);
CREATE INDEX superseded_phases_appointment_id_index ON calsync.superseded_phases (appointment_id);
COMMENT ON TABLE calsync.superseded_phases IS
    'Phases replaced when an appointment changed service, kept with their Cal.com bookings (which the sync must cancel).';
COMMENT ON COLUMN calsync.superseded_phases.calcom_cancelled_at IS 'when the sync cancelled the phase''s Cal.com booking; NULL while it is to do';

-- name: functions
-- from: sql/functions/preflight.sql
-- from: sql/functions/contact.sql
-- from: sql/functions/phases.sql
-- from: sql/functions/host.sql
-- from: sql/functions/create_missing_phases.sql
-- calsync.preflight: before a revision adds a rule, find the rows that already break it.
-- p_violators is a query returning (id bigint, detail text), one row per offending row.
-- Mode 'refuse': stop with SQLSTATE CS001 and a readable report (count, first ids, rule, how to fix).
-- Mode 'new-rows-only': record the rows in calsync.integrity_issues and go on; the rule then covers new rows.
CREATE OR REPLACE FUNCTION calsync.preflight(
    p_revision text, p_rule text, p_table text, p_description text, p_violators text, p_fix text,
    p_mode text DEFAULT 'refuse'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_first text;
BEGIN
    EXECUTE format(
        'SELECT count(*), string_agg(id::text, '', '' ORDER BY id) FILTER (WHERE rn <= 10)
           FROM (SELECT v.id, row_number() OVER (ORDER BY v.id) AS rn FROM (%s) AS v) AS s', p_violators)
        INTO v_count, v_first;
    IF v_count = 0 THEN
        RETURN 0;
    END IF;
    IF p_mode = 'new-rows-only' THEN
        EXECUTE format(
            'INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
             SELECT %L, %L, v.id, v.detail, %L FROM (%s) AS v
             ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING',
            p_rule, p_table, 'pre-flight of revision ' || p_revision, p_violators);
        RAISE WARNING 'calsync pre-flight, revision %: % row(s) of % break rule % (%); the rule now covers new rows only and these rows are listed in calsync.integrity_issues (first ids: %)',
            p_revision, v_count, p_table, p_rule, p_description, v_first;
        RETURN v_count;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'CS001',
        MESSAGE = format('calsync pre-flight stopped revision %s: %s row(s) of %s break rule %s (%s)',
                         p_revision, v_count, p_table, p_rule, p_description),
        DETAIL = format('first ids: %s', v_first),
        HINT = p_fix || E'\nOr add the rule for new rows only, listing these rows in calsync.integrity_issues: '
               'rerun with CALSYNC_PREFLIGHT=new-rows-only.';
END
$$;
COMMENT ON FUNCTION calsync.preflight(text, text, text, text, text, text, text) IS
    'Before a revision adds a rule: refuse (SQLSTATE CS001) with a report of the rows that break it, or in new-rows-only mode list them in calsync.integrity_issues.';

-- Contact rules shared by the placeholder-email trigger, the worker's pre-flight guard and the views.

CREATE OR REPLACE FUNCTION calsync.is_usable_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND btrim(p_email) <> ''
$$;
COMMENT ON FUNCTION calsync.is_usable_email(text) IS 'An e-mail Cal.com can be given: not NULL and not blank.';

CREATE OR REPLACE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_phone IS NOT NULL AND btrim(p_phone) <> '' AND p_phone NOT LIKE 'anonymous%'
$$;
COMMENT ON FUNCTION calsync.is_usable_phone(text) IS
    'A phone Cal.com accepts: not NULL, not blank, and not the voice agent''s anonymous_<ts>_<hash> stand-in.';

CREATE OR REPLACE FUNCTION calsync.placeholder_email(p_customer_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'customer_' || p_customer_id || '@'
           || coalesce((SELECT value FROM calsync.settings WHERE key = 'placeholder_email_domain'), 'placeholder.invalid')
$$;
COMMENT ON FUNCTION calsync.placeholder_email(bigint) IS
    'customer_<id>@<domain>, the domain from calsync.settings placeholder_email_domain (default placeholder.invalid).';

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

-- Who is busy: the host is the Cal.com user when the staff row has one, else the staff row itself,
-- because one person can have two staff rows (the app's Fabian Spitzer).
CREATE OR REPLACE FUNCTION calsync.host_key(p_calcom_user_id bigint, p_staff_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- text || text (immutable), not text || bigint (anytextcat is only stable): so the planner inlines it
    SELECT CASE WHEN p_calcom_user_id IS NOT NULL THEN 'calcom_user:' || p_calcom_user_id::text
                WHEN p_staff_id IS NOT NULL THEN 'staff:' || p_staff_id::text END
$$;
COMMENT ON FUNCTION calsync.host_key(bigint, uuid) IS
    'calcom_user:<id> when the staff row has a Cal.com user, else staff:<uuid>; NULL without staff.';

-- Derive the phases of a live composite appointment that has none, from its service's segments; when
-- the segments are unusable, flag it instead: calcom_sync_status failed, requires_manual_review,
-- sync_error_code COMPOSITE_FAILURE, and a row in calsync.integrity_issues. Used by the rule
-- appointments_composite_has_phases, its backfill, and the remediation runbook.
CREATE OR REPLACE FUNCTION calsync.create_missing_phases(p_appointment_id bigint, p_found_by text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_appt appointments%ROWTYPE;
    v_segments jsonb;
    v_service text;
    v_problem text;
    v_count integer;
BEGIN
    IF EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = p_appointment_id) THEN
        RETURN 0;  -- the common case, without taking a lock
    END IF;
    -- the row lock serialises this with writers of the same appointment (phase inserts take KEY SHARE)
    SELECT * INTO v_appt FROM appointments WHERE id = p_appointment_id FOR UPDATE;
    IF NOT FOUND OR NOT v_appt.is_composite OR v_appt.status IN ('cancelled', 'no_show')
       OR EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = p_appointment_id) THEN
        RETURN 0;
    END IF;
    SELECT segments, name INTO v_segments, v_service FROM services WHERE id = v_appt.service_id;
    v_problem := calsync.segments_problem(v_segments);
    IF v_problem IS NULL THEN
        INSERT INTO appointment_phases (appointment_id, phase_type, segment_name, segment_key, sequence_order,
                                        start_offset_minutes, duration_minutes, staff_required, start_time,
                                        end_time, calcom_sync_status)
        SELECT p_appointment_id, d.phase_type, d.segment_name, d.segment_key, d.sequence_order,
               d.start_offset_minutes, d.duration_minutes, d.staff_required,
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes),
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes + d.duration_minutes),
               'pending'
        FROM calsync.derive_phases(v_segments) AS d;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        RETURN v_count;
    END IF;
    UPDATE appointments
    SET calcom_sync_status = 'failed',
        requires_manual_review = true,
        manual_review_flagged_at = coalesce(manual_review_flagged_at, now()),
        sync_error_code = 'COMPOSITE_FAILURE',
        sync_error_message = format('composite appointment without phases: %s (service %s, %s)',
                                    v_problem, v_appt.service_id, v_service)
    WHERE id = p_appointment_id;
    INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
    VALUES ('appointments_composite_has_phases', 'appointments', p_appointment_id,
            format('no phases could be derived: %s (service %s, %s)', v_problem, v_appt.service_id, v_service),
            p_found_by)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING;
    RETURN 0;
END
$$;
COMMENT ON FUNCTION calsync.create_missing_phases(bigint, text) IS
    'Derive the phases of a live composite appointment that has none, or flag it for manual review when its service''s segments are unusable. Returns the phases created.';

-- name: views
-- from: sql/views/appointment_busy_intervals.sql
-- The staff-required time of every live appointment with a host: its phases with staff_required when it
-- has phases, else [starts_at, ends_at). Processing gaps are free, so two perms can interleave.
-- Written per appointment (LATERAL), so a filter on appointment_id reaches the primary key and the
-- phases index instead of computing every appointment's time.
CREATE OR REPLACE VIEW calsync.appointment_busy_intervals AS
SELECT a.id AS appointment_id,
       x.phase_id,
       a.staff_id,
       calsync.host_key(s.calcom_user_id, a.staff_id) AS host_key,
       x.busy
FROM appointments a
JOIN staff s ON s.id = a.staff_id
CROSS JOIN LATERAL (
    SELECT p.id AS phase_id, tstzrange(p.start_time, p.end_time, '[)') AS busy
    FROM appointment_phases p
    WHERE p.appointment_id = a.id AND p.staff_required AND p.end_time > p.start_time
    UNION ALL
    SELECT NULL::bigint, tstzrange(a.starts_at, a.ends_at, '[)')
    WHERE a.ends_at > a.starts_at AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
) AS x
WHERE a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW calsync.appointment_busy_intervals IS
    'Staff-required time of live appointments: phases with staff_required, else the whole appointment.';
COMMENT ON COLUMN calsync.appointment_busy_intervals.appointment_id IS 'the live appointment';
COMMENT ON COLUMN calsync.appointment_busy_intervals.staff_id IS 'its staff row';
COMMENT ON COLUMN calsync.appointment_busy_intervals.host_key IS 'calsync.host_key(): the Cal.com user, else the staff row';
COMMENT ON COLUMN calsync.appointment_busy_intervals.phase_id IS 'the phase, or NULL for a whole appointment without phases';
COMMENT ON COLUMN calsync.appointment_busy_intervals.busy IS 'the busy time, [start, end)';

-- name: drop_btree_gist_if_ours
DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'btree_gist'), 'pg_extension')
       = 'created by calsync revision 0002' THEN
        DROP EXTENSION btree_gist;
    END IF;
END
$$;
