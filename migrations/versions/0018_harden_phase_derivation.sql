-- Frozen SQL of revision 0018 (never edit; sql/ holds the current definitions).

-- name: functions
-- from: sql/functions/written_by_this_transaction.sql
-- from: sql/functions/phases.sql
-- from: sql/functions/create_missing_phases.sql
-- from: sql/functions/composite_phases.sql
-- from: sql/functions/outbox_enqueue.sql
-- Was this row version written by the current transaction, at its top level or in any of its
-- subtransactions that has not been rolled back (SAVEPOINT … RELEASE: Laravel's nested DB::transaction(),
-- SQLAlchemy's begin_nested(), Django's nested atomic())? `xmin = pg_current_xact_id()::xid` sees the top
-- level only: a row written under a savepoint carries the subtransaction's xid.
--  1. No xid assigned: this transaction has written nothing.
--  2. xmin = the top-level xid: ours.
--  3. xmin older than the top-level xid (modulo 2^32): not ours; a subtransaction's xid is always later than
--     its parent's (PostgreSQL assigns the parent's first).
--  4. Otherwise it is a later xid: one of our subtransactions or a transaction that committed since we began.
--     The row is visible to us, so its writer is either us or committed: pg_xact_status() says 'in progress'
--     only for ours (it asks TransactionIdIsCurrentTransactionId, which knows released subtransactions). The
--     xid is widened to xid8 next to the top-level xid. pg_xact_status refuses xids not yet assigned, which
--     only a frozen row's old raw xmin can look like: those are not ours.
-- Like every xmin test, a frozen row whose raw xmin equals one of our running xids modulo 2^32 would count.
CREATE OR REPLACE FUNCTION calsync.written_by_this_transaction(p_xmin xid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_top bigint := pg_current_xact_id_if_assigned()::text::bigint;
    v_later bigint;
    v_xid xid8;
BEGIN
    IF v_top IS NULL OR p_xmin IS NULL THEN
        RETURN false;
    ELSIF p_xmin = (v_top::text)::xid8::xid THEN
        RETURN true;
    END IF;
    v_later := (p_xmin::text::bigint - (v_top & 4294967295)) & 4294967295;
    IF v_later >= 2147483648 THEN
        RETURN false;
    END IF;
    v_xid := (v_top + v_later)::text::xid8;
    IF v_xid < pg_snapshot_xmax(pg_current_snapshot()) THEN
        RETURN pg_xact_status(v_xid) IS NOT DISTINCT FROM 'in progress';  -- assigned before the snapshot: no error
    END IF;
    BEGIN
        RETURN pg_xact_status(v_xid) IS NOT DISTINCT FROM 'in progress';
    EXCEPTION WHEN invalid_parameter_value THEN  -- "transaction ID … is in the future": a frozen row's raw xmin
        RETURN false;
    END;
END
$$;
COMMENT ON FUNCTION calsync.written_by_this_transaction(xid) IS
    'true when a row with this xmin was written by the current transaction, at its top level or under a savepoint that was not rolled back.';

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

-- Derive the phases of a live composite appointment that has none, from its service's segments; when
-- the segments are unusable, flag it instead: calcom_sync_status failed, requires_manual_review,
-- sync_error_code COMPOSITE_FAILURE, and a row in calsync.integrity_issues. Phases that would end after
-- timestamptz's range are refused by the rule appointment_phases_within_time_range (23514). Used by the
-- rule appointments_composite_has_phases, its backfill, and the remediation runbook.
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
        IF EXISTS (SELECT 1 FROM calsync.derive_phases(v_segments) AS d
                   WHERE NOT calsync.phase_fits_time_range(v_appt.starts_at, d.start_offset_minutes, d.duration_minutes)) THEN
            PERFORM calsync.refuse_phases_outside_time_range(p_appointment_id, v_appt.starts_at);
        END IF;
        INSERT INTO appointment_phases (appointment_id, phase_type, segment_name, segment_key, sequence_order,
                                        start_offset_minutes, duration_minutes, staff_required, start_time,
                                        end_time, calcom_sync_status)
        SELECT p_appointment_id, d.phase_type, d.segment_name, d.segment_key, d.sequence_order,
               d.start_offset_minutes, d.duration_minutes, d.staff_required,
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes),
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes) + make_interval(mins => d.duration_minutes),
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

-- Rule: a live composite appointment has its phases. At commit (a deferred constraint trigger), one
-- without phases gets them derived from its service's segments; when the segments are unusable it is
-- flagged instead: calcom_sync_status failed, requires_manual_review, and a row in integrity_issues.

CREATE OR REPLACE FUNCTION calsync.tg_appointments__derive_phases_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.create_missing_phases(NEW.id, 'trigger appointments_composite_has_phases');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__derive_phases_at_commit() IS
    'Deferred trigger appointments_composite_has_phases: at commit, a live composite appointment without phases gets them (or is flagged).';

-- Rescheduling shifts the phases (a move that would take them past timestamptz's range is refused by the
-- rule appointment_phases_within_time_range); a new service supersedes them (kept in
-- calsync.superseded_phases with their Cal.com bookings) and the deferred trigger derives the new
-- service's phases at commit.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__keep_phases_in_step() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.service_id IS DISTINCT FROM OLD.service_id THEN
        WITH gone AS (
            DELETE FROM appointment_phases WHERE appointment_id = NEW.id
            RETURNING id, appointment_id, sequence_order, phase_type, segment_key, segment_name, staff_required,
                      start_time, end_time, calcom_booking_id, calcom_booking_uid, calcom_sync_status
        )
        INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                               segment_name, staff_required, start_time, end_time,
                                               calcom_booking_id, calcom_booking_uid, calcom_sync_status, reason)
        SELECT gone.*, format('service changed from %s to %s', OLD.service_id, NEW.service_id) FROM gone;
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at THEN
        IF EXISTS (SELECT 1 FROM appointment_phases
                   WHERE appointment_id = NEW.id
                     AND NOT calsync.phase_fits_time_range(NEW.starts_at, start_offset_minutes, duration_minutes)) THEN
            PERFORM calsync.refuse_phases_outside_time_range(NEW.id, NEW.starts_at);
        END IF;
        UPDATE appointment_phases
        SET start_time = NEW.starts_at + make_interval(mins => start_offset_minutes),
            end_time = NEW.starts_at + make_interval(mins => start_offset_minutes) + make_interval(mins => duration_minutes),
            updated_at = now()
        WHERE appointment_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__keep_phases_in_step() IS
    'Trigger appointments_phases_follow_appointment: a reschedule shifts the phases, a service change supersedes them.';

-- Rule: a composite service's segments can't be emptied (nor composite switched off) while upcoming live
-- appointments use it; the app's event-type import once set segments to NULL on every sync. Nor can a
-- simple service become composite while it is booked: its bookings were made without phases and would
-- contradict their service (is_composite follows the service). Refused, not re-derived: new phases would
-- change the staff's busy time and the bookings at Cal.com behind the salon's back.
CREATE OR REPLACE FUNCTION calsync.tg_services__keep_segments_while_booked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_first bigint;
    v_problem text;
BEGIN
    IF NOT OLD.composite AND NOT NEW.composite THEN
        RETURN NEW;
    END IF;
    v_problem := CASE WHEN NEW.composite THEN calsync.segments_problem(NEW.segments) END;
    IF OLD.composite AND NEW.composite AND v_problem IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT count(*), min(id) INTO v_count, v_first
    FROM appointments
    WHERE service_id = OLD.id AND status NOT IN ('cancelled', 'no_show') AND ends_at > now();
    IF v_count > 0 AND NOT OLD.composite THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is simple and booked by %s upcoming appointment(s) (first: #%s): it cannot become composite',
                             OLD.id, OLD.name, v_count, v_first),
            HINT = 'Those bookings were made without phases: create a new composite service for new bookings, or move or cancel them first.';
    ELSIF v_count > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is composite and booked by %s upcoming appointment(s) (first: #%s): %s',
                             OLD.id, OLD.name, v_count, v_first,
                             CASE WHEN NOT NEW.composite THEN 'it cannot stop being composite'
                                  ELSE 'its segments cannot be replaced by unusable ones (' || v_problem || ')' END),
            HINT = 'Keep the segments (an import that does not carry them must leave the column out), or move or cancel those appointments first.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_services__keep_segments_while_booked() IS
    'Trigger services_keep_segments_while_booked: while upcoming appointments use a service, it keeps composite as it is and a composite keeps usable segments.';

-- Backfill of the revision: existing live composite appointments without phases, in batches by id. The
-- phases complete old rows; they are not news for Cal.com (calsync.writer = 'backfill': nothing enqueued),
-- so bookings made before are not rebooked. A failing one is retried by the runbook's requeue step.
CREATE OR REPLACE FUNCTION calsync.backfill_composite_phases(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_id bigint;
BEGIN
    PERFORM set_config('calsync.writer', 'backfill', true);
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM appointments WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    FOR v_id IN
        SELECT a.id FROM appointments a
        WHERE a.id > p_after_id AND a.id <= v_last AND a.is_composite
          AND a.status NOT IN ('cancelled', 'no_show')
          AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
        ORDER BY a.id
    LOOP
        PERFORM calsync.create_missing_phases(v_id, 'backfill of revision 0011');
    END LOOP;
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.backfill_composite_phases(bigint, integer) IS
    'One batch of the composite-phases backfill: appointments with id in (after_id, returned id]; NULL when done.';

-- The transactional outbox: the intent to sync commits in the same transaction as the booking.
-- Appointment changes insert rows into calsync.outbox (insert-only, shaped for Debezium's outbox event
-- router); the worker delivers them (calsync.claim_sync_events / calsync.finish_sync_events).

-- Statuses the app books with; only these are synced to Cal.com (in_progress/completed already happened).
CREATE OR REPLACE FUNCTION calsync.is_bookable_status(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_status IN ('pending', 'confirmed', 'scheduled', 'booked')
$$;
COMMENT ON FUNCTION calsync.is_bookable_status(text) IS
    'true for the statuses an appointment is synced to Cal.com in: pending, confirmed, scheduled, booked.';

-- Changes the worker writes itself (calsync.writer = 'worker') and changes that came from Cal.com
-- (sync_origin = 'calcom') never enqueue: no loops. Nor do a revision's backfills (calsync.writer =
-- 'backfill'): completing old rows must not rebook them at Cal.com, which would e-mail every customer.
CREATE OR REPLACE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;
COMMENT ON FUNCTION calsync.is_sync_loop(text) IS
    'true when a change must not be synced back: written by the worker, or originating from Cal.com.';

-- PL/pgSQL, not SQL: a SQL function that can't be inlined (an INSERT) is planned again on every call from
-- a trigger; PL/pgSQL keeps the plan for the session (the app's every booking calls this).
CREATE OR REPLACE FUNCTION calsync.enqueue_sync(p_appointment_id bigint, p_type text, p_payload jsonb)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload)
    VALUES ('appointment', p_appointment_id::text, p_type, p_payload)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.enqueue_sync(bigint, text, jsonb) IS
    'Add one event (create, cancel or reschedule) for an appointment to calsync.outbox; returns its id.';

-- An appointment created with a bookable status enqueues a create; cancelling it a cancel; becoming
-- bookable again a create; a change of starts_at, staff or service while bookable a reschedule.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    IF calsync.is_sync_loop(NEW.sync_origin) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NOT calsync.is_bookable_status(NEW.status) THEN
            RETURN NULL;
        END IF;
        v_type := 'create';
    ELSIF NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled' THEN
        v_type := 'cancel';
    ELSIF calsync.is_bookable_status(NEW.status) AND NOT calsync.is_bookable_status(OLD.status) THEN
        v_type := 'create';
    ELSIF calsync.is_bookable_status(NEW.status)
          AND (NEW.starts_at, NEW.staff_id, NEW.service_id) IS DISTINCT FROM (OLD.starts_at, OLD.staff_id, OLD.service_id) THEN
        v_type := 'reschedule';
    ELSE
        RETURN NULL;
    END IF;
    PERFORM calsync.enqueue_sync(NEW.id, v_type, jsonb_build_object(
        'appointment_id', NEW.id, 'status', NEW.status, 'starts_at', NEW.starts_at, 'ends_at', NEW.ends_at,
        'staff_id', NEW.staff_id, 'service_id', NEW.service_id, 'customer_id', NEW.customer_id,
        'calcom_v2_booking_uid', NEW.calcom_v2_booking_uid));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__enqueue_sync() IS
    'Trigger appointments_enqueue_sync: create, cancel and reschedule events into calsync.outbox, in the booking''s transaction.';

-- Phases follow their appointment: phases changed on their own (not in a transaction that also wrote the
-- appointment, whose own event covers them; under a savepoint too: calsync.written_by_this_transaction)
-- enqueue a reschedule of the appointment, unless it is over:
-- Cal.com refuses bookings in the past, and history is not rebooked (revision 0011 derives the phases of
-- old composite appointments too).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM old_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM new_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSE
        -- only phases whose time or staff need changed (the app rewrites unchanged ones)
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT n.appointment_id FROM new_phases n JOIN old_phases o ON o.id = n.id
                       WHERE (n.start_time, n.end_time, n.staff_required) IS DISTINCT FROM (o.start_time, o.end_time, o.staff_required))
          AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__enqueue_sync() IS
    'Statement triggers appointment_phases_enqueue_sync_*: phases changed on their own reschedule their appointment.';

-- NOTIFY takes a lock at commit that serialises every notifying writer, so enqueueing notifies at most
-- once per statement, and only while a worker says it is idle (calsync.outbox_listeners).
CREATE OR REPLACE FUNCTION calsync.tg_outbox__wake_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM calsync.outbox_listeners WHERE idle) THEN
        PERFORM pg_notify('calsync_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__wake_worker() IS
    'Statement trigger outbox_wake_worker: NOTIFY calsync_outbox, once per statement and only when a worker is idle.';

-- name: previous_functions
-- The definitions before this revision, as revisions 0002 (phases.sql, create_missing_phases.sql),
-- 0011 (composite_phases.sql) and 0004 (outbox_enqueue.sql) froze them.
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
-- Rule: a live composite appointment has its phases. At commit (a deferred constraint trigger), one
-- without phases gets them derived from its service's segments; when the segments are unusable it is
-- flagged instead: calcom_sync_status failed, requires_manual_review, and a row in integrity_issues.

CREATE OR REPLACE FUNCTION calsync.tg_appointments__derive_phases_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.create_missing_phases(NEW.id, 'trigger appointments_composite_has_phases');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__derive_phases_at_commit() IS
    'Deferred trigger appointments_composite_has_phases: at commit, a live composite appointment without phases gets them (or is flagged).';

-- Rescheduling shifts the phases; a new service supersedes them (kept in calsync.superseded_phases with
-- their Cal.com bookings) and the deferred trigger derives the new service's phases at commit.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__keep_phases_in_step() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.service_id IS DISTINCT FROM OLD.service_id THEN
        WITH gone AS (
            DELETE FROM appointment_phases WHERE appointment_id = NEW.id
            RETURNING id, appointment_id, sequence_order, phase_type, segment_key, segment_name, staff_required,
                      start_time, end_time, calcom_booking_id, calcom_booking_uid, calcom_sync_status
        )
        INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                               segment_name, staff_required, start_time, end_time,
                                               calcom_booking_id, calcom_booking_uid, calcom_sync_status, reason)
        SELECT gone.*, format('service changed from %s to %s', OLD.service_id, NEW.service_id) FROM gone;
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at THEN
        UPDATE appointment_phases
        SET start_time = NEW.starts_at + make_interval(mins => start_offset_minutes),
            end_time = NEW.starts_at + make_interval(mins => start_offset_minutes + duration_minutes),
            updated_at = now()
        WHERE appointment_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__keep_phases_in_step() IS
    'Trigger appointments_phases_follow_appointment: a reschedule shifts the phases, a service change supersedes them.';

-- Rule: a composite service's segments can't be emptied (nor composite switched off) while upcoming live
-- appointments use it; the app's event-type import once set segments to NULL on every sync.
CREATE OR REPLACE FUNCTION calsync.tg_services__keep_segments_while_booked() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_first bigint;
BEGIN
    IF NOT OLD.composite OR (NEW.composite AND calsync.segments_problem(NEW.segments) IS NULL) THEN
        RETURN NEW;
    END IF;
    SELECT count(*), min(id) INTO v_count, v_first
    FROM appointments
    WHERE service_id = OLD.id AND status NOT IN ('cancelled', 'no_show') AND ends_at > now();
    IF v_count > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is composite and booked by %s upcoming appointment(s) (first: #%s): %s',
                             OLD.id, OLD.name, v_count, v_first,
                             CASE WHEN NOT NEW.composite THEN 'it cannot stop being composite'
                                  ELSE 'its segments cannot be replaced by unusable ones ('
                                       || calsync.segments_problem(NEW.segments) || ')' END),
            HINT = 'Keep the segments (an import that does not carry them must leave the column out), or move or cancel those appointments first.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_services__keep_segments_while_booked() IS
    'Trigger services_keep_segments_while_booked: refuses emptying a composite service''s segments while upcoming appointments use it.';

-- Backfill of the revision: existing live composite appointments without phases, in batches by id. The
-- phases complete old rows; they are not news for Cal.com (calsync.writer = 'backfill': nothing enqueued),
-- so bookings made before are not rebooked. A failing one is retried by the runbook's requeue step.
CREATE OR REPLACE FUNCTION calsync.backfill_composite_phases(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_id bigint;
BEGIN
    PERFORM set_config('calsync.writer', 'backfill', true);
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM appointments WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    FOR v_id IN
        SELECT a.id FROM appointments a
        WHERE a.id > p_after_id AND a.id <= v_last AND a.is_composite
          AND a.status NOT IN ('cancelled', 'no_show')
          AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
        ORDER BY a.id
    LOOP
        PERFORM calsync.create_missing_phases(v_id, 'backfill of revision 0011');
    END LOOP;
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.backfill_composite_phases(bigint, integer) IS
    'One batch of the composite-phases backfill: appointments with id in (after_id, returned id]; NULL when done.';
-- The transactional outbox: the intent to sync commits in the same transaction as the booking.
-- Appointment changes insert rows into calsync.outbox (insert-only, shaped for Debezium's outbox event
-- router); the worker delivers them (calsync.claim_sync_events / calsync.finish_sync_events).

-- Statuses the app books with; only these are synced to Cal.com (in_progress/completed already happened).
CREATE OR REPLACE FUNCTION calsync.is_bookable_status(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_status IN ('pending', 'confirmed', 'scheduled', 'booked')
$$;
COMMENT ON FUNCTION calsync.is_bookable_status(text) IS
    'true for the statuses an appointment is synced to Cal.com in: pending, confirmed, scheduled, booked.';

-- Changes the worker writes itself (calsync.writer = 'worker') and changes that came from Cal.com
-- (sync_origin = 'calcom') never enqueue: no loops. Nor do a revision's backfills (calsync.writer =
-- 'backfill'): completing old rows must not rebook them at Cal.com, which would e-mail every customer.
CREATE OR REPLACE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;
COMMENT ON FUNCTION calsync.is_sync_loop(text) IS
    'true when a change must not be synced back: written by the worker, or originating from Cal.com.';

-- PL/pgSQL, not SQL: a SQL function that can't be inlined (an INSERT) is planned again on every call from
-- a trigger; PL/pgSQL keeps the plan for the session (the app's every booking calls this).
CREATE OR REPLACE FUNCTION calsync.enqueue_sync(p_appointment_id bigint, p_type text, p_payload jsonb)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload)
    VALUES ('appointment', p_appointment_id::text, p_type, p_payload)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.enqueue_sync(bigint, text, jsonb) IS
    'Add one event (create, cancel or reschedule) for an appointment to calsync.outbox; returns its id.';

-- An appointment created with a bookable status enqueues a create; cancelling it a cancel; becoming
-- bookable again a create; a change of starts_at, staff or service while bookable a reschedule.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    IF calsync.is_sync_loop(NEW.sync_origin) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NOT calsync.is_bookable_status(NEW.status) THEN
            RETURN NULL;
        END IF;
        v_type := 'create';
    ELSIF NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled' THEN
        v_type := 'cancel';
    ELSIF calsync.is_bookable_status(NEW.status) AND NOT calsync.is_bookable_status(OLD.status) THEN
        v_type := 'create';
    ELSIF calsync.is_bookable_status(NEW.status)
          AND (NEW.starts_at, NEW.staff_id, NEW.service_id) IS DISTINCT FROM (OLD.starts_at, OLD.staff_id, OLD.service_id) THEN
        v_type := 'reschedule';
    ELSE
        RETURN NULL;
    END IF;
    PERFORM calsync.enqueue_sync(NEW.id, v_type, jsonb_build_object(
        'appointment_id', NEW.id, 'status', NEW.status, 'starts_at', NEW.starts_at, 'ends_at', NEW.ends_at,
        'staff_id', NEW.staff_id, 'service_id', NEW.service_id, 'customer_id', NEW.customer_id,
        'calcom_v2_booking_uid', NEW.calcom_v2_booking_uid));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__enqueue_sync() IS
    'Trigger appointments_enqueue_sync: create, cancel and reschedule events into calsync.outbox, in the booking''s transaction.';

-- Phases follow their appointment: phases changed on their own (not in a transaction that also wrote the
-- appointment, whose own event covers them) enqueue a reschedule of the appointment, unless it is over:
-- Cal.com refuses bookings in the past, and history is not rebooked (revision 0011 derives the phases of
-- old composite appointments too).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM old_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND a.xmin <> pg_current_xact_id()::xid AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM new_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND a.xmin <> pg_current_xact_id()::xid AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSE
        -- only phases whose time or staff need changed (the app rewrites unchanged ones)
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT n.appointment_id FROM new_phases n JOIN old_phases o ON o.id = n.id
                       WHERE (n.start_time, n.end_time, n.staff_required) IS DISTINCT FROM (o.start_time, o.end_time, o.staff_required))
          AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND a.xmin <> pg_current_xact_id()::xid AND NOT calsync.is_sync_loop(a.sync_origin);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__enqueue_sync() IS
    'Statement triggers appointment_phases_enqueue_sync_*: phases changed on their own reschedule their appointment.';

-- NOTIFY takes a lock at commit that serialises every notifying writer, so enqueueing notifies at most
-- once per statement, and only while a worker says it is idle (calsync.outbox_listeners).
CREATE OR REPLACE FUNCTION calsync.tg_outbox__wake_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM calsync.outbox_listeners WHERE idle) THEN
        PERFORM pg_notify('calsync_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__wake_worker() IS
    'Statement trigger outbox_wake_worker: NOTIFY calsync_outbox, once per statement and only when a worker is idle.';

-- name: drop
DROP FUNCTION calsync.written_by_this_transaction(xid);
DROP FUNCTION calsync.segment_number(jsonb, text);
DROP FUNCTION calsync.segment_flag(jsonb, text);
DROP FUNCTION calsync.phase_fits_time_range(timestamptz, bigint, bigint);
DROP FUNCTION calsync.refuse_phases_outside_time_range(bigint, timestamptz);
