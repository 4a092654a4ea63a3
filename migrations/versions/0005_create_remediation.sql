-- Frozen SQL of revision 0005 (never edit; sql/ holds the current definitions).

-- name: schema
CREATE SCHEMA remediation;
COMMENT ON SCHEMA remediation IS 'Views of sync problems for DBAs, and the audited runbook that fixes them';

CREATE TABLE remediation.categories (
    category            text PRIMARY KEY,
    origin              text NOT NULL CHECK (origin IN ('worker', 'incident')),
    retryable           boolean NOT NULL,
    requeue_when_fixed  boolean NOT NULL,
    description         text NOT NULL,
    recommended_action  text NOT NULL,
    runbook_step        text,
    sort_order          bigint NOT NULL
);
COMMENT ON TABLE remediation.categories IS 'Why a sync fails, and what to do about it.';
COMMENT ON COLUMN remediation.categories.requeue_when_fixed IS
    'the runbook''s requeue step retries such a failure once nothing in the data blocks it any more (remediation.blocking_cause() is NULL); false: a person decides';
INSERT INTO remediation.categories VALUES
 ('OTHER', 'incident', false, true, 'An error no rule recognises (the app''s cut HTTP 400s)',
  'Read the full error; requeue once the cause is fixed', 'requeue', 10),
 ('DOUBLE_BOOKING', 'incident', false, true, 'Another live appointment holds the slot or the Cal.com booking, or the host is booked twice',
  'Keep one appointment and cancel the duplicates; for a double-booked host, reschedule one', 'duplicates', 20),
 ('COMPOSITE_FAILURE', 'worker', false, true, 'A composite appointment without phases (or without staff for them)',
  'Derive the phases from the service''s segments (fix the segments if they are unusable); cancel it if nobody can do it', 'missing_phases', 30),
 ('PHASE_ERROR', 'incident', false, true, 'Invalid phases: doubled, without sequence, or out of step with the appointment',
  'Supersede the broken phases and derive them again', 'broken_phases', 40),
 ('MISSING_CONTACT', 'worker', false, true, 'The customer has no usable e-mail or phone (anonymous_… callers)',
  'Give the customer a placeholder e-mail (or a real contact), then requeue', 'placeholder_emails', 50),
 ('PAST_APPOINTMENT', 'worker', false, false, 'The appointment is in the past; Cal.com refuses it',
  'Keep it as history or cancel it', 'past', 60),
 ('HOST_UNAVAILABLE', 'worker', false, false, 'The host is already booked at that time',
  'Reschedule (or cancel) one of the conflicting bookings: a business decision', 'host_conflicts', 70),
 ('VALIDATION', 'worker', false, true, 'Cal.com refused a field of the request (the error names it)',
  'Correct the named field (e-mail, phone, booking field), then requeue', 'requeue', 80),
 ('EVENT_TYPE_NOT_FOUND', 'worker', false, true, 'Cal.com does not know the event type',
  'Fix services.calcom_event_type_id / calcom_event_map, then requeue', 'requeue', 90),
 ('CONFIG_MISSING', 'worker', false, true, 'No Cal.com event type is mapped for the service, segment or staff',
  'Add the mapping (calcom_event_map or services.calcom_event_type_id), then requeue', 'requeue', 100),
 ('AUTH', 'worker', true, true, 'Cal.com refused the API key',
  'Renew the API key (systemd credential calcom_api_key); retries continue', NULL, 110),
 ('RATE_LIMITED', 'worker', true, true, 'Cal.com''s rate limit was hit (429)',
  'None: the worker waits out the block and retries', NULL, 120),
 ('SERVER_ERROR', 'worker', true, true, 'Cal.com answered 5xx',
  'None: retried with backoff; check Cal.com''s status if it persists', NULL, 130),
 ('NETWORK', 'worker', true, true, 'No usable answer (timeout, connection reset, malformed body)',
  'None: retried; the worker looks the booking up before creating it again', NULL, 140),
 ('CONFLICT', 'worker', true, true, 'Cal.com reported a race on the slot (409)',
  'None: retried after looking the booking up', NULL, 150);

CREATE TYPE remediation.change AS (step text, table_name text, row_id bigint, action text, before jsonb, after jsonb);
COMMENT ON TYPE remediation.change IS 'One change of a runbook step: what it did (or would do) to which row, before and after.';

CREATE TABLE remediation.log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      uuid NOT NULL,
    step        text NOT NULL,
    operator    text NOT NULL,
    reason      text,
    table_name  text NOT NULL,
    row_id      bigint NOT NULL,
    action      text NOT NULL CHECK (action IN ('update', 'insert', 'delete')),
    before      jsonb,
    after       jsonb,
    logged_at   timestamptz NOT NULL DEFAULT now(),
    undone_by   uuid
);
CREATE INDEX remediation_log_run_id_index ON remediation.log (run_id);
COMMENT ON TABLE remediation.log IS 'Every change the runbook made: run, step, operator, reason, and the row before and after.';

CREATE TABLE remediation.runs (
    run_id       uuid PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    operator     text NOT NULL,
    reason       text,
    steps        text[] NOT NULL,
    dry_run      boolean NOT NULL,
    before       jsonb,
    after        jsonb
);
COMMENT ON TABLE remediation.runs IS 'Runs of `calsync remediate`, with the dashboard and error distribution before and after.';

-- Why a failure the app recorded (an HTTP code, a cut message) happened, diagnosed from the data when it
-- was recorded (trigger appointments_diagnose_failure; existing ones by this revision's backfill). The
-- worker's failures carry their category in sync_error_code and are not listed here.
CREATE TABLE remediation.failure_diagnoses (
    appointment_id bigint PRIMARY KEY,
    category       text NOT NULL REFERENCES remediation.categories (category),
    blocking_cause text,
    error_code     text,
    diagnosed_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE remediation.failure_diagnoses IS
    'Why each failure the app recorded happened, diagnosed from the data when it was recorded (the worker''s failures carry their category themselves).';
COMMENT ON COLUMN remediation.failure_diagnoses.appointment_id IS 'the failing appointment';
COMMENT ON COLUMN remediation.failure_diagnoses.category IS 'the category found (remediation.sync_diagnosis at that moment)';
COMMENT ON COLUMN remediation.failure_diagnoses.blocking_cause IS 'what in the data blocked it then, or NULL';
COMMENT ON COLUMN remediation.failure_diagnoses.error_code IS 'the app''s sync_error_code of the failure';
COMMENT ON COLUMN remediation.failure_diagnoses.diagnosed_at IS 'when it was diagnosed';

INSERT INTO calsync.settings (key, value, description) VALUES
 ('health_failed_critical', '10', 'remediation.sync_health is CRITICAL from this many failed syncs'),
 ('health_success_rate_critical', '0.8', 'remediation.sync_health is CRITICAL below this 24 h success rate (with >= 10 attempts)');

-- name: diagnosis
-- from: sql/views/remediation_diagnosis.sql
-- Building blocks of the findings, one row per appointment (or pair) and written so that a filter on
-- appointment_id reaches the indexes: the per-appointment functions (remediation_classify.sql) read them
-- with such a filter, the findings views drive them from the partial indexes over the problem rows.

-- Invalid phases: the fields the sync needs are missing, the time does not follow the appointment, or two
-- phases share a place in the sequence.
CREATE OR REPLACE VIEW remediation.broken_phases AS
SELECT p.appointment_id, p.id AS phase_id, p.sequence_order,
       CASE WHEN p.sequence_order IS NULL THEN 'no sequence_order'
            WHEN p.segment_key IS NULL THEN 'no segment_key'
            WHEN p.duration_minutes <= 0 THEN 'duration is not positive'
            WHEN p.start_time <> a.starts_at + make_interval(mins => p.start_offset_minutes)
                THEN 'start_time does not follow the appointment''s start and the phase offset'
            ELSE 'another phase has the same sequence_order' END AS problem
FROM appointment_phases p
JOIN appointments a ON a.id = p.appointment_id
WHERE p.sequence_order IS NULL OR p.segment_key IS NULL OR p.duration_minutes <= 0
   OR p.start_time <> a.starts_at + make_interval(mins => p.start_offset_minutes)
   OR EXISTS (SELECT 1 FROM appointment_phases q
              WHERE q.appointment_id = p.appointment_id AND q.sequence_order = p.sequence_order AND q.id <> p.id);
COMMENT ON VIEW remediation.broken_phases IS
    'Phases the sync cannot use (fields missing, time not following the appointment, sequence taken twice); the runbook step broken_phases derives them again.';
COMMENT ON COLUMN remediation.broken_phases.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.broken_phases.phase_id IS 'the phase';
COMMENT ON COLUMN remediation.broken_phases.sequence_order IS 'its place in the sequence';
COMMENT ON COLUMN remediation.broken_phases.problem IS 'what is wrong with it, in words';

-- Pairs of live appointments of one host (the Cal.com user, else the staff row: one person on two staff
-- rows is one host) whose staff-required time overlaps. Candidates come from the index on
-- (staff_id, starts_at) (an appointment is assumed to last less than a day) and must overlap as a whole
-- before their phases are compared. The OFFSET 0 subqueries stay per appointment: the planner cannot trade
-- them for a hash of the whole table.
CREATE OR REPLACE VIEW remediation.host_overlaps AS
SELECT a.id AS appointment_id, b.id AS other_id, i.host_key, i.busy, o.busy AS other_busy,
       a.staff_id, b.staff_id AS other_staff_id, a.starts_at, a.ends_at, a.calcom_sync_status
FROM appointments a
JOIN staff s ON s.id = a.staff_id
CROSS JOIN LATERAL (
    SELECT b.id, b.staff_id
    FROM staff s2
    JOIN appointments b ON b.staff_id = s2.id
    WHERE calsync.host_key(s2.calcom_user_id, s2.id) = calsync.host_key(s.calcom_user_id, s.id)
      AND b.starts_at > a.starts_at - interval '1 day' AND b.starts_at < a.ends_at AND b.ends_at > a.starts_at
      AND b.id <> a.id AND b.status NOT IN ('cancelled', 'no_show')
    OFFSET 0
) AS b
CROSS JOIN LATERAL (
    SELECT x.host_key, x.busy FROM calsync.appointment_busy_intervals x WHERE x.appointment_id = a.id OFFSET 0
) AS i
CROSS JOIN LATERAL (
    SELECT x.busy FROM calsync.appointment_busy_intervals x WHERE x.appointment_id = b.id AND x.busy && i.busy OFFSET 0
) AS o
WHERE a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW remediation.host_overlaps IS
    'Every pair of live appointments whose host is booked twice at once (both directions; a row per overlapping phase). Filter by appointment_id; remediation.host_conflicts lists the ones that block a sync.';
COMMENT ON COLUMN remediation.host_overlaps.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.host_overlaps.other_id IS 'the live appointment of the same host at an overlapping time';
COMMENT ON COLUMN remediation.host_overlaps.host_key IS 'the host: calcom_user:<id>, else staff:<uuid>';
COMMENT ON COLUMN remediation.host_overlaps.busy IS 'this appointment''s staff-required time that overlaps';
COMMENT ON COLUMN remediation.host_overlaps.other_busy IS 'the other appointment''s overlapping time';
COMMENT ON COLUMN remediation.host_overlaps.staff_id IS 'this appointment''s staff row';
COMMENT ON COLUMN remediation.host_overlaps.other_staff_id IS 'the other appointment''s staff row';
COMMENT ON COLUMN remediation.host_overlaps.starts_at IS 'this appointment''s start';
COMMENT ON COLUMN remediation.host_overlaps.ends_at IS 'this appointment''s end';
COMMENT ON COLUMN remediation.host_overlaps.calcom_sync_status IS 'this appointment''s sync status';

-- Pairs of live appointments that are one booking twice: the same customer, start and service, or the same
-- Cal.com booking (id or uid). Each of the three is one index lookup per appointment.
CREATE OR REPLACE VIEW remediation.shared_bookings AS
SELECT a.id AS appointment_id, x.other_id, x.reason
FROM appointments a
CROSS JOIN LATERAL (
    SELECT d.id AS other_id, 'same customer, start and service' AS reason FROM appointments d
    WHERE d.customer_id = a.customer_id AND d.starts_at = a.starts_at AND d.service_id = a.service_id
      AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    UNION ALL
    SELECT d.id, 'same Cal.com booking ' || d.calcom_booking_id FROM appointments d
    WHERE d.calcom_booking_id = a.calcom_booking_id AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    UNION ALL
    SELECT d.id, 'same Cal.com booking ' || d.calcom_v2_booking_uid FROM appointments d
    WHERE d.calcom_v2_booking_uid = a.calcom_v2_booking_uid AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    OFFSET 0
) AS x
WHERE a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW remediation.shared_bookings IS
    'Pairs of live appointments that are one booking twice (same customer, start and service, or same Cal.com booking). Filter by appointment_id; remediation.duplicate_bookings lists the ones to resolve.';
COMMENT ON COLUMN remediation.shared_bookings.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.shared_bookings.other_id IS 'another live appointment that is the same booking';
COMMENT ON COLUMN remediation.shared_bookings.reason IS 'what they share';

-- The appointments the findings start from: not settled at Cal.com (sync pending or failed), flagged for
-- a person, or listed in an open integrity issue. Each part is read from its own index, so the findings
-- stay fast however large the table is; an appointment that is synced and breaks no listed rule is settled.
CREATE OR REPLACE VIEW remediation.unsettled_appointments AS
SELECT a.id AS appointment_id FROM appointments a WHERE a.calcom_sync_status IN ('failed', 'pending')
UNION
SELECT a.id FROM appointments a WHERE a.requires_manual_review
UNION
SELECT i.row_id FROM calsync.integrity_issues i WHERE i.table_name = 'appointments' AND i.resolved_at IS NULL;
COMMENT ON VIEW remediation.unsettled_appointments IS
    'Appointments not settled: sync pending or failed, flagged for manual review, or in an open integrity issue. The findings views start from these.';
COMMENT ON COLUMN remediation.unsettled_appointments.appointment_id IS 'the appointment';

-- Why an appointment does not sync. blocking_cause: what in the data keeps it from syncing (checked in this
-- order): a composite without phases or staff, invalid phases, a double booking (same slot, same Cal.com
-- booking, or its host booked twice at once), a customer without any usable contact. category: the
-- worker's verdict (sync_error_code) wins; for failures from before the worker (the app's HTTP_400 rows with
-- cut messages) the data decides, then what is left of Cal.com's message; else OTHER.
CREATE OR REPLACE VIEW remediation.sync_diagnosis AS
SELECT a.id AS appointment_id,
       x.blocking_cause,
       coalesce(w.category, x.blocking_cause,
                CASE WHEN a.sync_error_message ILIKE '%in the past%' THEN 'PAST_APPOINTMENT'
                     WHEN a.sync_error_message ILIKE '%already has booking%'
                          OR a.sync_error_message ILIKE '%not available%' THEN 'HOST_UNAVAILABLE' END,
                'OTHER') AS category
FROM appointments a
LEFT JOIN customers c ON c.id = a.customer_id
LEFT JOIN remediation.categories w ON w.category = a.sync_error_code AND w.origin = 'worker'
CROSS JOIN LATERAL (
    -- OFFSET 0 in the EXISTS keeps each a lookup for this appointment (never a hash of the whole table)
    SELECT CASE
        WHEN a.is_composite AND (a.staff_id IS NULL
                                 OR NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id))
            THEN 'COMPOSITE_FAILURE'
        WHEN EXISTS (SELECT 1 FROM remediation.broken_phases b WHERE b.appointment_id = a.id OFFSET 0)
            THEN 'PHASE_ERROR'
        WHEN EXISTS (SELECT 1 FROM remediation.shared_bookings d WHERE d.appointment_id = a.id OFFSET 0)
             OR EXISTS (SELECT 1 FROM remediation.host_overlaps h WHERE h.appointment_id = a.id OFFSET 0)
            THEN 'DOUBLE_BOOKING'
        WHEN NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone) THEN 'MISSING_CONTACT'
    END AS blocking_cause
) AS x;
COMMENT ON VIEW remediation.sync_diagnosis IS
    'Why each appointment does (or would) fail to sync. Filter by appointment_id; remediation.failed_syncs lists the failing ones.';
COMMENT ON COLUMN remediation.sync_diagnosis.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.sync_diagnosis.blocking_cause IS
    'what in the data keeps it from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL';
COMMENT ON COLUMN remediation.sync_diagnosis.category IS
    'its failure category (remediation.categories): the worker''s verdict, else the blocking cause, else Cal.com''s message, else OTHER';

-- name: functions
-- from: sql/functions/remediation_classify.sql
-- from: sql/functions/remediation_runbook.sql
-- Per-appointment answers for the worker and the runbook. Each reads one building block of
-- sql/views/remediation_diagnosis.sql filtered by the appointment, so the rule has one definition.

CREATE OR REPLACE FUNCTION remediation.host_conflicts_of(p_appointment_id bigint)
RETURNS TABLE (other_id bigint, host_key text, busy tstzrange, other_busy tstzrange)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT ON (h.other_id) h.other_id, h.host_key, h.busy, h.other_busy
    FROM remediation.host_overlaps h
    WHERE h.appointment_id = p_appointment_id
    ORDER BY h.other_id, lower(h.busy)
$$;
COMMENT ON FUNCTION remediation.host_conflicts_of(bigint) IS
    'Live appointments of the same host whose staff-required time overlaps this appointment''s (remediation.host_overlaps).';

CREATE OR REPLACE FUNCTION remediation.blocking_cause(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.blocking_cause FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.blocking_cause(bigint) IS
    'What in the data keeps the appointment from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL (remediation.sync_diagnosis).';

CREATE OR REPLACE FUNCTION remediation.failure_category(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.category FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.failure_category(bigint) IS
    'The category of a failing appointment''s sync: the worker''s verdict, else what blocks it in the data, else Cal.com''s message, else OTHER (remediation.sync_diagnosis).';

-- Diagnose the failures the app recorded, once, when they are recorded: the findings then read one row instead
-- of looking for the cause again (that lookup is what costs on a big table). The worker's failures carry
-- their category (sync_error_code) and are left alone. A diagnosis describes the failure as it was; a
-- fix shows in blocking_cause() (live), which is what the runbook's requeue step checks.
CREATE OR REPLACE FUNCTION remediation.diagnose_failures(p_appointment_ids bigint[]) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    WITH diagnosed AS (
        INSERT INTO remediation.failure_diagnoses AS f (appointment_id, category, blocking_cause, error_code, diagnosed_at)
        SELECT d.appointment_id, d.category, d.blocking_cause, a.sync_error_code, now()
        FROM appointments a
        JOIN remediation.sync_diagnosis d ON d.appointment_id = a.id
        WHERE a.id = ANY (p_appointment_ids) AND (a.calcom_sync_status = 'failed' OR a.requires_manual_review)
          AND NOT EXISTS (SELECT 1 FROM remediation.categories k WHERE k.category = a.sync_error_code AND k.origin = 'worker')
        ON CONFLICT (appointment_id) DO UPDATE
            SET category = EXCLUDED.category, blocking_cause = EXCLUDED.blocking_cause, error_code = EXCLUDED.error_code,
                diagnosed_at = EXCLUDED.diagnosed_at
        RETURNING 1
    )
    SELECT count(*)::int FROM diagnosed
$$;
COMMENT ON FUNCTION remediation.diagnose_failures(bigint[]) IS
    'Record in remediation.failure_diagnoses why the app''s failures of these appointments happened (the worker''s failures are skipped); returns how many.';

CREATE OR REPLACE FUNCTION remediation.tg_appointments__diagnose_failure() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM remediation.diagnose_failures(ARRAY[NEW.id]);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION remediation.tg_appointments__diagnose_failure() IS
    'Trigger appointments_diagnose_failure: diagnose a failure when it is recorded.';

-- Revision 0005's backfill: diagnose the failing appointments after p_after_id, p_batch of them at once.
CREATE OR REPLACE FUNCTION remediation.backfill_failure_diagnoses(p_after_id bigint, p_batch integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_ids bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id) INTO v_ids
    FROM (SELECT a.id FROM appointments a
          WHERE (a.calcom_sync_status = 'failed' OR a.requires_manual_review) AND a.id > p_after_id
          ORDER BY a.id LIMIT p_batch) AS batch;
    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM remediation.diagnose_failures(v_ids);
    RETURN v_ids[cardinality(v_ids)];
END
$$;
COMMENT ON FUNCTION remediation.backfill_failure_diagnoses(bigint, integer) IS
    'Diagnose existing failures in batches (revision 0005); returns the last id done, NULL when there is none left.';

-- The runbook: every fix the incident applied by hand, as an audited SQL function. Each step
--  - finds only rows that still need it, so a second run changes nothing (idempotent);
--  - locks each row, re-checks it and changes it in one short statement, so it is safe next to the app
--    and the worker;
--  - with p_dry_run (the default) only returns what it would change;
--  - records before and after images in remediation.log with the run id, operator and reason;
--  - never deletes a row; remediation.undo(run_id) reverts a run.
-- Steps return SETOF remediation.change; p_limit bounds one call (the CLI calls again until done).
-- SECURITY DEFINER: calsync_remediator needs EXECUTE only.

CREATE OR REPLACE FUNCTION remediation.operator() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('calsync.operator', true), ''), session_user::text)
$$;
COMMENT ON FUNCTION remediation.operator() IS 'Who runs the runbook: the session setting calsync.operator (the CLI sets the OS user), else the database user.';

CREATE OR REPLACE FUNCTION remediation.record(p_run_id uuid, p_step text, p_reason text, p_table text, p_row_id bigint,
                                              p_action text, p_before jsonb, p_after jsonb)
RETURNS remediation.change
LANGUAGE sql AS $$
    INSERT INTO remediation.log (run_id, step, operator, reason, table_name, row_id, action, before, after)
    VALUES (p_run_id, p_step, remediation.operator(), p_reason, p_table, p_row_id, p_action, p_before, p_after)
    RETURNING step, table_name, row_id, action, before, after
$$;
COMMENT ON FUNCTION remediation.record(uuid, text, text, text, bigint, text, jsonb, jsonb) IS
    'Write one change of a runbook step to remediation.log and return it.';

-- Fix 1: customers without any usable contact get customer_<id>@<domain> (flagged as a placeholder).
CREATE OR REPLACE FUNCTION remediation.backfill_placeholder_emails(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_before jsonb;
BEGIN
    FOR v_id IN SELECT c.id FROM customers c
                WHERE NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone)
                  AND c.deleted_at IS NULL ORDER BY c.id LIMIT p_limit
    LOOP
        SELECT jsonb_build_object('email', c.email, 'email_is_placeholder', c.email_is_placeholder) INTO v_before
        FROM customers c WHERE c.id = v_id AND NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone)
        FOR UPDATE;
        CONTINUE WHEN v_before IS NULL;  -- fixed meanwhile
        IF p_dry_run THEN
            RETURN NEXT ('placeholder_emails', 'customers', v_id, 'update', v_before,
                         jsonb_build_object('email', calsync.placeholder_email(v_id), 'email_is_placeholder', true))::remediation.change;
            CONTINUE;
        END IF;
        UPDATE customers SET email = calsync.placeholder_email(id), email_is_placeholder = true, updated_at = now()
        WHERE id = v_id;
        RETURN NEXT remediation.record(p_run_id, 'placeholder_emails', p_reason, 'customers', v_id, 'update', v_before,
            (SELECT jsonb_build_object('email', email, 'email_is_placeholder', email_is_placeholder) FROM customers WHERE id = v_id));
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.backfill_placeholder_emails(boolean, text, uuid, integer) IS
    'Runbook step placeholder_emails (incident fix 1): customers with no usable e-mail or phone get customer_<id>@<domain>.';

-- The sync columns a runbook step may change on an appointment, as an image.
CREATE OR REPLACE FUNCTION remediation.appointment_image(p_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'status', status, 'calcom_sync_status', calcom_sync_status, 'requires_manual_review', requires_manual_review,
        'manual_review_flagged_at', manual_review_flagged_at, 'sync_error_code', sync_error_code,
        'sync_error_message', sync_error_message, 'calcom_booking_id', calcom_booking_id,
        'calcom_v2_booking_id', calcom_v2_booking_id, 'calcom_v2_booking_uid', calcom_v2_booking_uid)
    FROM appointments WHERE id = p_id
$$;
COMMENT ON FUNCTION remediation.appointment_image(bigint) IS 'The appointment columns the runbook changes, as JSON (for remediation.log).';

-- Apply an image to an appointment (the columns present in p_image); used by the steps and by undo.
CREATE OR REPLACE FUNCTION remediation.apply_appointment_image(p_id bigint, p_image jsonb) RETURNS void
LANGUAGE sql AS $$
    UPDATE appointments a SET
        status = CASE WHEN p_image ? 'status' THEN p_image->>'status' ELSE a.status END,
        calcom_sync_status = CASE WHEN p_image ? 'calcom_sync_status' THEN p_image->>'calcom_sync_status' ELSE a.calcom_sync_status END,
        requires_manual_review = CASE WHEN p_image ? 'requires_manual_review' THEN (p_image->>'requires_manual_review')::boolean ELSE a.requires_manual_review END,
        manual_review_flagged_at = CASE WHEN p_image ? 'manual_review_flagged_at' THEN (p_image->>'manual_review_flagged_at')::timestamptz ELSE a.manual_review_flagged_at END,
        sync_error_code = CASE WHEN p_image ? 'sync_error_code' THEN p_image->>'sync_error_code' ELSE a.sync_error_code END,
        sync_error_message = CASE WHEN p_image ? 'sync_error_message' THEN p_image->>'sync_error_message' ELSE a.sync_error_message END,
        calcom_booking_id = CASE WHEN p_image ? 'calcom_booking_id' THEN (p_image->>'calcom_booking_id')::bigint ELSE a.calcom_booking_id END,
        calcom_v2_booking_id = CASE WHEN p_image ? 'calcom_v2_booking_id' THEN p_image->>'calcom_v2_booking_id' ELSE a.calcom_v2_booking_id END,
        calcom_v2_booking_uid = CASE WHEN p_image ? 'calcom_v2_booking_uid' THEN p_image->>'calcom_v2_booking_uid' ELSE a.calcom_v2_booking_uid END,
        updated_at = now()
    WHERE a.id = p_id
$$;
COMMENT ON FUNCTION remediation.apply_appointment_image(bigint, jsonb) IS 'Set the appointment columns present in an image (runbook steps and undo).';

-- One appointment change of a step: lock, re-check (p_still: a condition on the locked row), apply, log.
CREATE OR REPLACE FUNCTION remediation.change_appointment(p_run_id uuid, p_step text, p_reason text, p_id bigint,
                                                          p_changes jsonb, p_dry_run boolean, p_still text)
RETURNS remediation.change
LANGUAGE plpgsql AS $$
DECLARE
    v_ok boolean;
    v_before jsonb;
BEGIN
    EXECUTE format('SELECT %s FROM appointments a WHERE a.id = $1 FOR UPDATE', p_still) INTO v_ok USING p_id;
    IF NOT coalesce(v_ok, false) THEN
        RETURN NULL;  -- changed meanwhile: nothing to do any more
    END IF;
    v_before := remediation.appointment_image(p_id);
    IF p_dry_run THEN
        RETURN (p_step, 'appointments', p_id, 'update', v_before, v_before || p_changes)::remediation.change;
    END IF;
    PERFORM remediation.apply_appointment_image(p_id, p_changes);
    RETURN remediation.record(p_run_id, p_step, p_reason, 'appointments', p_id, 'update', v_before,
                              remediation.appointment_image(p_id));
END
$$;
COMMENT ON FUNCTION remediation.change_appointment(uuid, text, text, bigint, jsonb, boolean, text) IS
    'Lock an appointment, re-check the step''s condition, apply the change and log before/after (or only report it in a dry run).';

-- Fix 2: live composite appointments without phases get them from their service's segments (or are
-- flagged when the segments are unusable). Appointments that have phases are skipped (#667, #673).
CREATE OR REPLACE FUNCTION remediation.create_missing_phases(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_before jsonb;
    v_after jsonb;
    v_phase record;
BEGIN
    FOR v_id IN SELECT a.id FROM appointments a
                WHERE a.is_composite AND a.status NOT IN ('cancelled', 'no_show')
                  AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
                  AND NOT EXISTS (SELECT 1 FROM calsync.integrity_issues i  -- flagged already: unusable segments
                                  WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments'
                                    AND i.row_id = a.id AND i.resolved_at IS NULL)
                ORDER BY a.id LIMIT p_limit
    LOOP
        v_before := remediation.appointment_image(v_id);
        IF p_dry_run THEN
            RETURN NEXT ('missing_phases', 'appointments', v_id, 'update', v_before,
                         v_before || jsonb_build_object('phases', (SELECT jsonb_agg(to_jsonb(d)) FROM appointments a
                             JOIN services s ON s.id = a.service_id, calsync.derive_phases(s.segments) d WHERE a.id = v_id)))::remediation.change;
            CONTINUE;
        END IF;
        CONTINUE WHEN calsync.create_missing_phases(v_id, 'remediation run ' || p_run_id) = 0
                      AND remediation.appointment_image(v_id) = v_before;
        FOR v_phase IN SELECT p.id, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
        LOOP
            RETURN NEXT remediation.record(p_run_id, 'missing_phases', p_reason, 'appointment_phases', v_phase.id, 'insert',
                                           NULL, v_phase.image);
        END LOOP;
        v_after := remediation.appointment_image(v_id);
        IF v_after <> v_before THEN  -- flagged: the segments are unusable
            RETURN NEXT remediation.record(p_run_id, 'missing_phases', p_reason, 'appointments', v_id, 'update', v_before, v_after);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.create_missing_phases(boolean, text, uuid, integer) IS
    'Runbook step missing_phases (incident fix 2): derive the phases of live composite appointments that have none.';

-- Phases that are broken (doubled, without sequence or segment, or out of step with the appointment) are
-- superseded (moved to calsync.superseded_phases, not lost) and derived again from the service.
CREATE OR REPLACE FUNCTION remediation.repair_broken_phases(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_phase record;
    v_superseded bigint;
BEGIN
    FOR v_id IN SELECT a.id FROM appointments a
                WHERE a.id IN (SELECT b.appointment_id FROM remediation.broken_phases b)
                  AND a.status NOT IN ('cancelled', 'no_show') AND remediation.blocking_cause(a.id) = 'PHASE_ERROR'
                ORDER BY a.id LIMIT p_limit
    LOOP
        PERFORM 1 FROM appointments WHERE id = v_id FOR UPDATE;
        FOR v_phase IN SELECT p.*, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
        LOOP
            IF p_dry_run THEN
                RETURN NEXT ('broken_phases', 'appointment_phases', v_phase.id, 'delete', v_phase.image, NULL)::remediation.change;
                CONTINUE;
            END IF;
            INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                                   segment_name, staff_required, start_time, end_time, calcom_booking_id,
                                                   calcom_booking_uid, calcom_sync_status, reason)
            VALUES (v_phase.id, v_id, v_phase.sequence_order, v_phase.phase_type, v_phase.segment_key, v_phase.segment_name,
                    v_phase.staff_required, v_phase.start_time, v_phase.end_time, v_phase.calcom_booking_id,
                    v_phase.calcom_booking_uid, v_phase.calcom_sync_status, 'invalid phases: derived again by remediation')
            RETURNING id INTO v_superseded;
            DELETE FROM appointment_phases WHERE id = v_phase.id;
            RETURN NEXT remediation.record(p_run_id, 'broken_phases', p_reason, 'appointment_phases', v_phase.id, 'delete',
                                           v_phase.image, jsonb_build_object('superseded_id', v_superseded));
        END LOOP;
        IF NOT p_dry_run THEN
            PERFORM calsync.create_missing_phases(v_id, 'remediation run ' || p_run_id);
            FOR v_phase IN SELECT p.id, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
            LOOP
                RETURN NEXT remediation.record(p_run_id, 'broken_phases', p_reason, 'appointment_phases', v_phase.id,
                                               'insert', NULL, v_phase.image);
            END LOOP;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.repair_broken_phases(boolean, text, uuid, integer) IS
    'Runbook step broken_phases: supersede invalid phases (kept in calsync.superseded_phases) and derive them again.';

-- Fix 3: of live appointments sharing a slot or a Cal.com booking keep one, the one with a booking (then
-- the lowest id), mark it synced, cancel the others. A duplicate that only points at the kept one's
-- booking loses that pointer (logged), so its cancellation does not cancel the kept booking at Cal.com.
CREATE OR REPLACE FUNCTION remediation.resolve_duplicate_bookings(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    g record;
    v_keep appointments%ROWTYPE;
    v_dup bigint;
    v_change remediation.change;
    v_issue bigint;
    v_seen bigint[] := '{}';  -- a row in two groups (same slot and same booking) is handled once
BEGIN
    FOR g IN
        WITH live AS (SELECT * FROM appointments WHERE status NOT IN ('cancelled', 'no_show')),
        groups AS (
            SELECT array_agg(id ORDER BY (calcom_booking_id IS NULL AND calcom_v2_booking_uid IS NULL), id) AS ids,
                   'same customer, start and service' AS why
            FROM live GROUP BY customer_id, starts_at, service_id HAVING count(*) > 1
            UNION ALL
            SELECT array_agg(id ORDER BY id), 'same Cal.com booking ' || calcom_booking_id FROM live
            WHERE calcom_booking_id IS NOT NULL GROUP BY calcom_booking_id HAVING count(*) > 1
            UNION ALL
            SELECT array_agg(id ORDER BY id), 'same Cal.com booking ' || calcom_v2_booking_uid FROM live
            WHERE calcom_v2_booking_uid IS NOT NULL GROUP BY calcom_v2_booking_uid HAVING count(*) > 1
        )
        SELECT * FROM groups ORDER BY ids[1] LIMIT p_limit
    LOOP
        CONTINUE WHEN g.ids <@ v_seen;
        v_seen := v_seen || g.ids;
        SELECT * INTO v_keep FROM appointments WHERE id = g.ids[1];
        IF v_keep.calcom_booking_id IS NOT NULL OR v_keep.calcom_v2_booking_uid IS NOT NULL THEN
            v_change := remediation.change_appointment(p_run_id, 'duplicates', p_reason, v_keep.id,
                jsonb_build_object('calcom_sync_status', 'synced', 'requires_manual_review', false,
                                   'manual_review_flagged_at', NULL, 'sync_error_code', NULL, 'sync_error_message', NULL),
                p_dry_run, format('a.status NOT IN (''cancelled'', ''no_show'') AND (a.calcom_sync_status <> ''synced'' OR a.requires_manual_review)'));
            IF v_change IS NOT NULL THEN
                RETURN NEXT v_change;
            END IF;
        END IF;
        FOREACH v_dup IN ARRAY g.ids[2:] LOOP
            v_change := remediation.change_appointment(p_run_id, 'duplicates', p_reason, v_dup,
                jsonb_build_object(
                    'status', 'cancelled', 'requires_manual_review', false, 'manual_review_flagged_at', NULL,
                    'sync_error_code', 'DOUBLE_BOOKING',
                    'sync_error_message', format('Duplicate of #%s (%s): cancelled by remediation', v_keep.id, g.why))
                || (SELECT CASE WHEN (d.calcom_booking_id IS NOT DISTINCT FROM v_keep.calcom_booking_id OR d.calcom_booking_id IS NULL)
                                 AND (d.calcom_v2_booking_uid IS NOT DISTINCT FROM v_keep.calcom_v2_booking_uid OR d.calcom_v2_booking_uid IS NULL)
                                THEN jsonb_build_object('calcom_booking_id', NULL, 'calcom_v2_booking_uid', NULL,
                                                        'calcom_v2_booking_id', NULL, 'calcom_sync_status', 'synced')
                                ELSE jsonb_build_object('calcom_sync_status', 'pending') END
                    FROM appointments d WHERE d.id = v_dup),
                p_dry_run, 'a.status NOT IN (''cancelled'', ''no_show'')');
            IF v_change IS NOT NULL THEN
                RETURN NEXT v_change;
                IF NOT p_dry_run THEN
                    FOR v_issue IN UPDATE calsync.integrity_issues SET resolved_at = now(), resolved_by = remediation.operator(),
                                          resolution = 'cancelled as a duplicate of #' || v_keep.id
                                   WHERE table_name = 'appointments' AND row_id = v_dup AND resolved_at IS NULL RETURNING id
                    LOOP
                        RETURN NEXT remediation.record(p_run_id, 'duplicates', p_reason, 'integrity_issues', v_issue, 'update',
                            jsonb_build_object('resolved_at', NULL, 'resolved_by', NULL, 'resolution', NULL),
                            (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
                             FROM calsync.integrity_issues WHERE id = v_issue));
                    END LOOP;
                END IF;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.resolve_duplicate_bookings(boolean, text, uuid, integer) IS
    'Runbook step duplicates (incident fix 3): keep the appointment with the Cal.com booking, cancel the duplicates.';

-- Fix 4: cancel live appointments without a service, and composite ones without staff (staff required).
CREATE OR REPLACE FUNCTION remediation.cancel_invalid_appointments(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    v_change remediation.change;
BEGIN
    FOR r IN SELECT a.id, CASE WHEN a.service_id IS NULL THEN 'service missing' ELSE 'staff missing' END AS why,
                    (a.calcom_booking_id IS NOT NULL OR a.calcom_v2_booking_uid IS NOT NULL) AS booked
             FROM appointments a
             WHERE a.status NOT IN ('cancelled', 'no_show') AND (a.service_id IS NULL OR (a.is_composite AND a.staff_id IS NULL))
             ORDER BY a.id LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'invalid', p_reason, r.id,
            jsonb_build_object('status', 'cancelled', 'requires_manual_review', false, 'manual_review_flagged_at', NULL,
                               'sync_error_code', NULL,
                               'sync_error_message', 'Invalid appointment - ' || r.why || ': cancelled by remediation',
                               -- nothing at Cal.com: nothing left to sync; else the worker cancels the booking
                               'calcom_sync_status', CASE WHEN r.booked THEN 'pending' ELSE 'synced' END),
            p_dry_run, 'a.status NOT IN (''cancelled'', ''no_show'') AND (a.service_id IS NULL OR (a.is_composite AND a.staff_id IS NULL))');
        IF v_change IS NOT NULL THEN
            RETURN NEXT v_change;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.cancel_invalid_appointments(boolean, text, uuid, integer) IS
    'Runbook step invalid (incident fix 4): cancel live appointments without a service, or composite ones without staff.';

-- Remaining category 1: live appointments that are over and never reached Cal.com. p_mode 'historical'
-- keeps them as history (calcom_sync_status orphaned_local: they exist only here); 'cancel' cancels them.
CREATE OR REPLACE FUNCTION remediation.resolve_past_unsynced(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL, p_mode text DEFAULT 'historical', p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_change remediation.change;
BEGIN
    IF p_mode NOT IN ('historical', 'cancel') THEN
        RAISE EXCEPTION 'resolve_past_unsynced: p_mode must be historical or cancel, not %', p_mode USING ERRCODE = '22023';
    END IF;
    FOR v_id IN SELECT appointment_id FROM remediation.past_unsynced WHERE ends_at < p_now ORDER BY 1 LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'past', p_reason, v_id,
            CASE WHEN p_mode = 'cancel'
                 THEN jsonb_build_object('status', 'cancelled', 'calcom_sync_status', 'synced', 'requires_manual_review', false,
                                         'manual_review_flagged_at', NULL, 'sync_error_code', 'PAST_APPOINTMENT')
                 ELSE jsonb_build_object('calcom_sync_status', 'orphaned_local', 'requires_manual_review', false,
                                         'manual_review_flagged_at', NULL, 'sync_error_code', 'PAST_APPOINTMENT') END,
            p_dry_run, format('a.calcom_sync_status IN (''failed'', ''pending'') AND a.status NOT IN (''cancelled'', ''no_show'') AND a.ends_at < %L::timestamptz', p_now));
        IF v_change IS NOT NULL THEN
            RETURN NEXT v_change;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.resolve_past_unsynced(boolean, text, uuid, integer, text, timestamptz) IS
    'Runbook step past (remaining category 1): past appointments that never synced are kept as history (orphaned_local) or cancelled.';

-- Remaining category 2: upcoming live appointments whose host is booked twice: flag both for a
-- reschedule, naming the conflicting booking, and list them in calsync.integrity_issues.
CREATE OR REPLACE FUNCTION remediation.flag_host_conflicts(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    v_message text;
    v_change remediation.change;
    v_issue bigint;
BEGIN
    FOR r IN SELECT DISTINCT ON (h.appointment_id) h.* FROM remediation.host_conflicts h
             JOIN appointments a ON a.id = h.appointment_id
             WHERE NOT (a.requires_manual_review AND a.sync_error_code IS NOT DISTINCT FROM 'HOST_UNAVAILABLE')
             ORDER BY h.appointment_id, h.conflicts_with LIMIT p_limit
    LOOP
        v_message := format('Host conflict: %s is also booked %s by appointment #%s; reschedule one of them (or cancel it)',
                            r.host_key, r.other_busy, r.conflicts_with);
        v_change := remediation.change_appointment(p_run_id, 'host_conflicts', p_reason, r.appointment_id,
            jsonb_build_object('calcom_sync_status', 'failed', 'requires_manual_review', true,
                               'manual_review_flagged_at', now(), 'sync_error_code', 'HOST_UNAVAILABLE',
                               'sync_error_message', v_message),
            p_dry_run, format('a.status NOT IN (''cancelled'', ''no_show'') AND a.sync_error_message IS DISTINCT FROM %L', v_message));
        CONTINUE WHEN v_change IS NULL;
        RETURN NEXT v_change;
        IF NOT p_dry_run THEN
            INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
            VALUES ('host_busy_time_no_overlap', 'appointments', r.appointment_id, v_message, 'remediation run ' || p_run_id)
            ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING
            RETURNING id INTO v_issue;
            IF v_issue IS NOT NULL THEN
                RETURN NEXT remediation.record(p_run_id, 'host_conflicts', p_reason, 'integrity_issues', v_issue, 'insert', NULL,
                    (SELECT to_jsonb(i) FROM calsync.integrity_issues i WHERE i.id = v_issue));
            END IF;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.flag_host_conflicts(boolean, text, uuid, integer) IS
    'Runbook step host_conflicts (remaining category 2): flag double-booked hosts'' appointments for a reschedule, naming the other booking.';

-- Requeue failing upcoming appointments whose cause is gone (nothing in the data blocks them any more),
-- for the categories given (NULL: every category that is not a person's decision), so the worker retries.
CREATE OR REPLACE FUNCTION remediation.requeue_failures(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL, p_categories text[] DEFAULT NULL, p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    v_change remediation.change;
    v_event uuid;
BEGIN
    FOR r IN SELECT f.appointment_id, f.category FROM remediation.failed_syncs f
             JOIN remediation.categories k ON k.category = f.category
             WHERE f.status IN ('pending', 'confirmed', 'scheduled', 'booked') AND f.starts_at > p_now
               AND remediation.blocking_cause(f.appointment_id) IS NULL
               AND (CASE WHEN p_categories IS NULL THEN k.requeue_when_fixed ELSE f.category = ANY (p_categories) END)
             ORDER BY f.appointment_id LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'requeue', p_reason, r.appointment_id,
            jsonb_build_object('calcom_sync_status', 'pending', 'requires_manual_review', false, 'manual_review_flagged_at', NULL),
            p_dry_run, '(a.calcom_sync_status = ''failed'' OR a.requires_manual_review)');
        CONTINUE WHEN v_change IS NULL;
        RETURN NEXT v_change;
        IF NOT p_dry_run THEN
            UPDATE calsync.outbox_delivery SET status = 'retry', next_attempt_at = p_now, last_error = 'requeued by remediation'
            WHERE status = 'dead' AND aggregateid = r.appointment_id::text;
            v_event := calsync.enqueue_sync(r.appointment_id, 'create',
                jsonb_build_object('appointment_id', r.appointment_id, 'requeued_by_run', p_run_id, 'category', r.category));
            RETURN NEXT remediation.record(p_run_id, 'requeue', p_reason, 'outbox', r.appointment_id, 'insert', NULL,
                                           jsonb_build_object('outbox_id', v_event, 'category', r.category));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.requeue_failures(boolean, text, uuid, integer, text[], timestamptz) IS
    'Runbook step requeue: queue failing upcoming appointments whose cause is fixed for another sync.';

-- Revert a run: every logged change, newest first. Updated columns get their before values back; rows a
-- step inserted (derived phases, integrity issues, outbox events not yet delivered) are removed again,
-- which restores the state before the run exactly. The undo is itself a logged run; returns its changes.
CREATE OR REPLACE FUNCTION remediation.undo(p_run_id uuid, p_reason text DEFAULT NULL)
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    l remediation.log%ROWTYPE;
    v_undo uuid := gen_random_uuid();
    v_now jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM remediation.log WHERE run_id = p_run_id) THEN
        RAISE EXCEPTION 'remediation.undo: no run %', p_run_id USING ERRCODE = 'P0002',
            HINT = 'List runs with: SELECT * FROM remediation.runs ORDER BY started_at DESC;';
    END IF;
    FOR l IN SELECT * FROM remediation.log WHERE run_id = p_run_id AND undone_by IS NULL ORDER BY id DESC FOR UPDATE
    LOOP
        IF l.action = 'update' AND l.table_name = 'appointments' THEN
            v_now := remediation.appointment_image(l.row_id);
            PERFORM remediation.apply_appointment_image(l.row_id, l.before);
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', v_now, remediation.appointment_image(l.row_id));
        ELSIF l.action = 'update' AND l.table_name = 'customers' THEN
            v_now := (SELECT jsonb_build_object('email', email, 'email_is_placeholder', email_is_placeholder) FROM customers WHERE id = l.row_id);
            UPDATE customers SET email = l.before->>'email', email_is_placeholder = (l.before->>'email_is_placeholder')::boolean
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', v_now, l.before);
        ELSIF l.action = 'update' AND l.table_name = 'integrity_issues' THEN
            UPDATE calsync.integrity_issues SET resolved_at = NULL, resolved_by = NULL, resolution = NULL WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', l.after, l.before);
        ELSIF l.action = 'delete' AND l.table_name = 'appointment_phases' THEN
            -- a superseded phase comes back exactly as it was
            INSERT INTO appointment_phases SELECT * FROM jsonb_populate_record(NULL::appointment_phases, l.before);
            DELETE FROM calsync.superseded_phases WHERE id = (l.after->>'superseded_id')::bigint;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'insert', NULL, l.before);
        ELSIF l.action = 'insert' AND l.table_name = 'appointment_phases' THEN
            DELETE FROM appointment_phases WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSIF l.action = 'insert' AND l.table_name = 'integrity_issues' THEN
            DELETE FROM calsync.integrity_issues WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSIF l.action = 'insert' AND l.table_name = 'outbox' THEN
            -- an event the worker has not delivered yet is withdrawn; a delivered one cannot be unsent
            DELETE FROM calsync.outbox o WHERE o.id = (l.after->>'outbox_id')::uuid
              AND NOT EXISTS (SELECT 1 FROM calsync.outbox_delivery d WHERE d.outbox_id = o.id AND d.status = 'running');
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.undo(uuid, text) IS
    'Revert a runbook run from its log (newest change first); the undo is itself logged as a run.';

-- name: trigger_diagnose
-- from: sql/triggers/appointments__diagnose_failure.sql
CREATE OR REPLACE TRIGGER appointments_diagnose_failure
    AFTER INSERT OR UPDATE OF calcom_sync_status, requires_manual_review, sync_error_code, sync_error_message
    ON appointments
    FOR EACH ROW WHEN (NEW.calcom_sync_status = 'failed' OR NEW.requires_manual_review)
    EXECUTE FUNCTION remediation.tg_appointments__diagnose_failure();

-- name: views
-- from: sql/views/remediation_findings.sql
-- from: sql/views/remediation_sync_health.sql
-- remediation: the views DBAs query. Each starts from its problem rows, read from partial indexes
-- (remediation.unsettled_appointments, the failing and unsynced indexes), and looks each one up, so it
-- stays fast on a large table (bench/views.py measures them on 1,000,000 appointments).
--
-- JIT: the planner prices each of those lookups like a disk read, so a finding with a few thousand rows is
-- priced past jit_above_cost, and PostgreSQL (jit = on by default) first compiles the query with LLVM:
-- 0.1 to 1.5 s of compiling for a query that runs in tens of milliseconds. The findings that look their
-- rows up therefore keep their query in a calsync.remediation_<name> view and read it through
-- remediation.<name>_without_jit(), a function that plans it with jit off (SET jit = off).

CREATE OR REPLACE VIEW calsync.remediation_failed_syncs AS
SELECT a.id AS appointment_id,
       a.customer_id,
       (SELECT c.name FROM customers c WHERE c.id = a.customer_id) AS customer_name,
       a.starts_at,
       a.status,
       f.category,
       k.retryable,
       coalesce(d.last_error, a.sync_error_message) AS last_error,
       a.sync_error_code AS error_code,
       a.sync_error_detail AS error_detail,
       greatest(a.sync_attempt_count, coalesce(d.attempts, 0)) AS attempts,
       coalesce(att.first_failure_at, a.manual_review_flagged_at, a.last_sync_attempt_at) AS first_failure_at,
       coalesce(att.last_failure_at, a.last_sync_attempt_at, a.manual_review_flagged_at) AS last_failure_at,
       a.requires_manual_review,
       d.status AS outbox_status,
       k.recommended_action,
       k.runbook_step
FROM appointments a
LEFT JOIN remediation.categories w ON w.category = a.sync_error_code AND w.origin = 'worker'
LEFT JOIN remediation.failure_diagnoses fd ON fd.appointment_id = a.id
-- the worker's verdict, else the diagnosis made when the app recorded the failure, else diagnose now
-- (OFFSET 0: once per row, although the category is used twice)
CROSS JOIN LATERAL (SELECT coalesce(w.category, fd.category, remediation.failure_category(a.id)) AS category OFFSET 0) f
LEFT JOIN remediation.categories k ON k.category = f.category
LEFT JOIN LATERAL (
    SELECT d.status, d.attempts, d.last_error FROM calsync.outbox_delivery d
    WHERE d.aggregateid = a.id::text ORDER BY d.created_at DESC LIMIT 1) AS d ON true
LEFT JOIN LATERAL (
    SELECT min(t.created_at) AS first_failure_at, max(t.created_at) AS last_failure_at
    FROM calsync.sync_attempts t WHERE t.appointment_id = a.id AND t.category <> 'OK') AS att ON true
WHERE a.calcom_sync_status = 'failed' OR a.requires_manual_review;
COMMENT ON VIEW calsync.remediation_failed_syncs IS 'The query of remediation.failed_syncs, read through remediation.failed_syncs_without_jit().';
CREATE OR REPLACE FUNCTION remediation.failed_syncs_without_jit() RETURNS SETOF calsync.remediation_failed_syncs
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_failed_syncs
$$;
COMMENT ON FUNCTION remediation.failed_syncs_without_jit() IS 'The rows of remediation.failed_syncs, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.failed_syncs AS SELECT * FROM remediation.failed_syncs_without_jit();
COMMENT ON VIEW remediation.failed_syncs IS
    'One row per appointment whose sync is failing (calcom_sync_status failed, or flagged for manual review), with why and what to do.';
COMMENT ON COLUMN remediation.failed_syncs.appointment_id IS 'the failing appointment';
COMMENT ON COLUMN remediation.failed_syncs.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.failed_syncs.customer_name IS 'the customer''s name';
COMMENT ON COLUMN remediation.failed_syncs.starts_at IS 'when the appointment starts';
COMMENT ON COLUMN remediation.failed_syncs.status IS 'the appointment''s status';
COMMENT ON COLUMN remediation.failed_syncs.category IS 'why it fails (remediation.categories): the worker''s verdict, else the diagnosis made when the failure was recorded (remediation.failure_diagnoses), else what the data shows now';
COMMENT ON COLUMN remediation.failed_syncs.retryable IS 'true when retrying can succeed without a change (a transient cause)';
COMMENT ON COLUMN remediation.failed_syncs.last_error IS 'the last error in full (Cal.com''s answer, or the worker''s guard)';
COMMENT ON COLUMN remediation.failed_syncs.error_code IS 'sync_error_code: a category, or the app''s HTTP_<status>';
COMMENT ON COLUMN remediation.failed_syncs.error_detail IS 'the last error as structure: status, code, message, field, request id';
COMMENT ON COLUMN remediation.failed_syncs.attempts IS 'sync attempts so far';
COMMENT ON COLUMN remediation.failed_syncs.first_failure_at IS 'the first failed attempt (or when it was flagged)';
COMMENT ON COLUMN remediation.failed_syncs.last_failure_at IS 'the last failed attempt';
COMMENT ON COLUMN remediation.failed_syncs.requires_manual_review IS 'flagged for a person';
COMMENT ON COLUMN remediation.failed_syncs.outbox_status IS 'the delivery of its latest outbox event: retry, running or dead (NULL: none pending)';
COMMENT ON COLUMN remediation.failed_syncs.recommended_action IS 'what to do, in words';
COMMENT ON COLUMN remediation.failed_syncs.runbook_step IS 'the `calsync remediate --only` step that fixes it (NULL: a person decides)';

CREATE OR REPLACE VIEW remediation.error_distribution AS
SELECT k.category,
       k.origin,
       count(f.appointment_id)::int AS failures,
       round(100.0 * count(f.appointment_id) / nullif(sum(count(f.appointment_id)) OVER (), 0), 1) AS share_percent,
       k.recommended_action
FROM remediation.categories k
LEFT JOIN remediation.failed_syncs f ON f.category = k.category
GROUP BY k.category, k.origin, k.recommended_action, k.sort_order
ORDER BY count(f.appointment_id) DESC, k.sort_order;
COMMENT ON VIEW remediation.error_distribution IS 'Failing syncs per category, every category listed (the incident''s and the worker''s).';
COMMENT ON COLUMN remediation.error_distribution.category IS 'the category';
COMMENT ON COLUMN remediation.error_distribution.origin IS 'incident: found from the data; worker: the worker''s verdict';
COMMENT ON COLUMN remediation.error_distribution.failures IS 'failing appointments in this category';
COMMENT ON COLUMN remediation.error_distribution.share_percent IS 'share of all failing appointments, in percent';
COMMENT ON COLUMN remediation.error_distribution.recommended_action IS 'what to do about this category';

CREATE OR REPLACE VIEW calsync.remediation_duplicate_bookings AS
WITH seeds AS (  -- unsettled live appointments (from 30 days ago on) that share their booking
    SELECT a.id
    FROM remediation.unsettled_appointments u
    JOIN appointments a ON a.id = u.appointment_id
    WHERE a.status NOT IN ('cancelled', 'no_show') AND a.starts_at >= now() - interval '30 days'
      AND EXISTS (SELECT 1 FROM remediation.shared_bookings b WHERE b.appointment_id = a.id OFFSET 0)
), members AS (  -- and every appointment they share it with (the kept one is often settled)
    SELECT id FROM seeds
    UNION
    SELECT b.other_id FROM seeds JOIN remediation.shared_bookings b ON b.appointment_id = seeds.id
)
SELECT a.id AS appointment_id, a.customer_id, a.starts_at, a.service_id, a.calcom_booking_id, a.calcom_v2_booking_uid,
       a.status, a.calcom_sync_status,
       (array_agg(DISTINCT b.other_id ORDER BY b.other_id)) AS duplicates_of,
       string_agg(DISTINCT b.reason, '; ' ORDER BY b.reason) AS reason
FROM members m
JOIN appointments a ON a.id = m.id
JOIN remediation.shared_bookings b ON b.appointment_id = a.id
GROUP BY a.id;
COMMENT ON VIEW calsync.remediation_duplicate_bookings IS 'The query of remediation.duplicate_bookings, read through remediation.duplicate_bookings_without_jit().';
CREATE OR REPLACE FUNCTION remediation.duplicate_bookings_without_jit() RETURNS SETOF calsync.remediation_duplicate_bookings
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_duplicate_bookings
$$;
COMMENT ON FUNCTION remediation.duplicate_bookings_without_jit() IS 'The rows of remediation.duplicate_bookings, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.duplicate_bookings AS SELECT * FROM remediation.duplicate_bookings_without_jit();
COMMENT ON VIEW remediation.duplicate_bookings IS
    'Live appointments that are one booking twice (same customer, start and service, or same Cal.com booking), found from the unsettled ones (remediation.unsettled_appointments, from 30 days ago on) and listed with every appointment they share it with.';
COMMENT ON COLUMN remediation.duplicate_bookings.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.duplicate_bookings.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.duplicate_bookings.starts_at IS 'its start';
COMMENT ON COLUMN remediation.duplicate_bookings.service_id IS 'its service';
COMMENT ON COLUMN remediation.duplicate_bookings.calcom_booking_id IS 'its Cal.com booking id';
COMMENT ON COLUMN remediation.duplicate_bookings.calcom_v2_booking_uid IS 'its Cal.com booking uid';
COMMENT ON COLUMN remediation.duplicate_bookings.status IS 'its status';
COMMENT ON COLUMN remediation.duplicate_bookings.calcom_sync_status IS 'its sync status';
COMMENT ON COLUMN remediation.duplicate_bookings.duplicates_of IS 'the other live appointments it duplicates';
COMMENT ON COLUMN remediation.duplicate_bookings.reason IS 'what they share (several reasons separated by ; )';

CREATE OR REPLACE VIEW remediation.past_unsynced AS
SELECT a.id AS appointment_id, a.customer_id, a.starts_at, a.ends_at, a.status, a.calcom_sync_status,
       a.sync_error_message AS last_error
FROM appointments a
WHERE a.calcom_sync_status IN ('failed', 'pending') AND a.status NOT IN ('cancelled', 'no_show')
  AND a.ends_at < now() AND a.calcom_v2_booking_uid IS NULL AND a.calcom_booking_id IS NULL;
COMMENT ON VIEW remediation.past_unsynced IS
    'Live appointments that are over but never reached Cal.com (Cal.com refuses bookings in the past): cancel them or keep them as history.';
COMMENT ON COLUMN remediation.past_unsynced.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.past_unsynced.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.past_unsynced.starts_at IS 'its start (in the past)';
COMMENT ON COLUMN remediation.past_unsynced.ends_at IS 'its end (in the past)';
COMMENT ON COLUMN remediation.past_unsynced.status IS 'its status';
COMMENT ON COLUMN remediation.past_unsynced.calcom_sync_status IS 'failed or pending: it never synced';
COMMENT ON COLUMN remediation.past_unsynced.last_error IS 'the last sync error';

CREATE OR REPLACE VIEW calsync.remediation_host_conflicts AS
SELECT DISTINCT ON (a.id, h.other_id)
       a.id AS appointment_id, h.other_id AS conflicts_with, h.host_key, h.busy, h.other_busy, a.starts_at,
       a.staff_id, h.other_staff_id, a.calcom_sync_status
FROM appointments a
CROSS JOIN LATERAL (SELECT * FROM remediation.host_overlaps h WHERE h.appointment_id = a.id OFFSET 0) AS h
WHERE a.calcom_sync_status IN ('failed', 'pending') AND a.ends_at >= now() AND a.status NOT IN ('cancelled', 'no_show')
ORDER BY a.id, h.other_id, lower(h.busy);
COMMENT ON VIEW calsync.remediation_host_conflicts IS 'The query of remediation.host_conflicts, read through remediation.host_conflicts_without_jit().';
CREATE OR REPLACE FUNCTION remediation.host_conflicts_without_jit() RETURNS SETOF calsync.remediation_host_conflicts
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_host_conflicts
$$;
COMMENT ON FUNCTION remediation.host_conflicts_without_jit() IS 'The rows of remediation.host_conflicts, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.host_conflicts AS SELECT * FROM remediation.host_conflicts_without_jit();
COMMENT ON VIEW remediation.host_conflicts IS
    'Live appointments not yet at Cal.com (sync pending or failed) and not over, whose host (Cal.com user, else staff row) is booked twice at once: Cal.com will refuse them; reschedule one of the two. Pairs already both at Cal.com are not listed (remediation.host_overlaps has every pair).';
COMMENT ON COLUMN remediation.host_conflicts.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.host_conflicts.conflicts_with IS 'the live appointment of the same host at an overlapping time';
COMMENT ON COLUMN remediation.host_conflicts.host_key IS 'the host: calcom_user:<id>, else staff:<uuid>';
COMMENT ON COLUMN remediation.host_conflicts.busy IS 'this appointment''s staff-required time that overlaps';
COMMENT ON COLUMN remediation.host_conflicts.other_busy IS 'the other appointment''s overlapping time';
COMMENT ON COLUMN remediation.host_conflicts.starts_at IS 'this appointment''s start';
COMMENT ON COLUMN remediation.host_conflicts.staff_id IS 'this appointment''s staff row';
COMMENT ON COLUMN remediation.host_conflicts.other_staff_id IS 'the other appointment''s staff row (another row of one person counts)';
COMMENT ON COLUMN remediation.host_conflicts.calcom_sync_status IS 'this appointment''s sync status: pending or failed';

CREATE OR REPLACE VIEW calsync.remediation_composites_without_phases AS
SELECT a.id AS appointment_id, a.service_id, s.name AS service_name, a.starts_at, a.status, a.staff_id,
       calsync.segments_problem(s.segments) AS segments_problem
FROM remediation.unsettled_appointments u
-- OFFSET 0: each unsettled appointment is looked up; with thousands of them a plain join became a hash join
-- over every appointment of the last 30 days (0.28 s on 1,000,000 with 0.5 % failing)
CROSS JOIN LATERAL (SELECT x.id, x.service_id, x.starts_at, x.status, x.staff_id, x.is_composite
                    FROM appointments x WHERE x.id = u.appointment_id OFFSET 0) AS a
JOIN services s ON s.id = a.service_id
WHERE a.is_composite AND a.status NOT IN ('cancelled', 'no_show') AND a.starts_at >= now() - interval '30 days'
  AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id);
COMMENT ON VIEW calsync.remediation_composites_without_phases IS 'The query of remediation.composites_without_phases, read through remediation.composites_without_phases_without_jit().';
CREATE OR REPLACE FUNCTION remediation.composites_without_phases_without_jit() RETURNS SETOF calsync.remediation_composites_without_phases
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    SELECT * FROM calsync.remediation_composites_without_phases
$$;
COMMENT ON FUNCTION remediation.composites_without_phases_without_jit() IS 'The rows of remediation.composites_without_phases, planned without JIT (see the head of this file).';
CREATE OR REPLACE VIEW remediation.composites_without_phases AS SELECT * FROM remediation.composites_without_phases_without_jit();
COMMENT ON VIEW remediation.composites_without_phases IS
    'Unsettled live composite appointments (remediation.unsettled_appointments, from 30 days ago on) that have no phases, so they cannot be synced. Since revision 0011 a composite gets its phases when it is saved.';
COMMENT ON COLUMN remediation.composites_without_phases.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.composites_without_phases.service_id IS 'its composite service';
COMMENT ON COLUMN remediation.composites_without_phases.service_name IS 'the service''s name';
COMMENT ON COLUMN remediation.composites_without_phases.starts_at IS 'its start';
COMMENT ON COLUMN remediation.composites_without_phases.status IS 'its status';
COMMENT ON COLUMN remediation.composites_without_phases.staff_id IS 'its staff row (NULL: nobody to do the work)';
COMMENT ON COLUMN remediation.composites_without_phases.segments_problem IS 'why phases cannot be derived from the service, or NULL when they can';

CREATE OR REPLACE VIEW remediation.customers_missing_contact AS
SELECT c.id AS customer_id, c.name, c.email, c.phone, c.source,
       (SELECT count(*) FROM appointments a WHERE a.customer_id = c.id AND a.status NOT IN ('cancelled', 'no_show')
          AND a.starts_at >= now())::int AS upcoming_appointments
FROM customers c
WHERE NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone) AND c.deleted_at IS NULL;
COMMENT ON VIEW remediation.customers_missing_contact IS
    'Customers with no usable e-mail and no usable phone (NULL, blank or anonymous_…): Cal.com refuses their bookings.';
COMMENT ON COLUMN remediation.customers_missing_contact.customer_id IS 'the customer';
COMMENT ON COLUMN remediation.customers_missing_contact.name IS 'the customer''s name';
COMMENT ON COLUMN remediation.customers_missing_contact.email IS 'the e-mail (NULL or blank)';
COMMENT ON COLUMN remediation.customers_missing_contact.phone IS 'the phone (NULL, blank or the voice agent''s anonymous_<ts>_<hash>)';
COMMENT ON COLUMN remediation.customers_missing_contact.source IS 'where the customer came from';
COMMENT ON COLUMN remediation.customers_missing_contact.upcoming_appointments IS 'their live appointments still to come';

CREATE OR REPLACE VIEW remediation.appointments_without_service AS
SELECT a.id AS appointment_id, a.customer_id, a.starts_at, a.status, a.calcom_sync_status
FROM appointments a
WHERE a.service_id IS NULL AND a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW remediation.appointments_without_service IS 'Live appointments without a service (like the incident''s #15): cancel them or set the service.';
COMMENT ON COLUMN remediation.appointments_without_service.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.appointments_without_service.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.appointments_without_service.starts_at IS 'its start';
COMMENT ON COLUMN remediation.appointments_without_service.status IS 'its status';
COMMENT ON COLUMN remediation.appointments_without_service.calcom_sync_status IS 'its sync status';

CREATE OR REPLACE VIEW remediation.stuck_outbox AS
SELECT o.id AS outbox_id, o.aggregateid::bigint AS appointment_id, o.type, o.created_at,
       now() - o.created_at AS age, d.status, d.attempts, d.next_attempt_at, d.locked_by, d.locked_until,
       d.last_category, d.last_error
FROM calsync.outbox o
LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
WHERE d.status IS DISTINCT FROM 'dead' AND o.created_at < now() - interval '5 minutes';
COMMENT ON VIEW remediation.stuck_outbox IS 'Outbox events undelivered for more than 5 minutes (not dead): is the worker running, is Cal.com answering?';
COMMENT ON COLUMN remediation.stuck_outbox.outbox_id IS 'the event';
COMMENT ON COLUMN remediation.stuck_outbox.appointment_id IS 'its appointment';
COMMENT ON COLUMN remediation.stuck_outbox.type IS 'create, cancel or reschedule';
COMMENT ON COLUMN remediation.stuck_outbox.created_at IS 'when it was enqueued';
COMMENT ON COLUMN remediation.stuck_outbox.age IS 'how long it has waited';
COMMENT ON COLUMN remediation.stuck_outbox.status IS 'NULL: never claimed; running: leased; retry: waiting for next_attempt_at';
COMMENT ON COLUMN remediation.stuck_outbox.attempts IS 'attempts so far';
COMMENT ON COLUMN remediation.stuck_outbox.next_attempt_at IS 'when it is retried';
COMMENT ON COLUMN remediation.stuck_outbox.locked_by IS 'the worker holding it';
COMMENT ON COLUMN remediation.stuck_outbox.locked_until IS 'its lease';
COMMENT ON COLUMN remediation.stuck_outbox.last_category IS 'the last failure''s category';
COMMENT ON COLUMN remediation.stuck_outbox.last_error IS 'the last failure in full';

CREATE OR REPLACE VIEW remediation.dead_letters AS
SELECT d.outbox_id, d.aggregateid::bigint AS appointment_id, o.type, d.attempts, d.last_category, d.last_error,
       o.created_at, d.processed_at AS died_at, k.recommended_action
FROM calsync.outbox_delivery d
JOIN calsync.outbox o ON o.id = d.outbox_id
LEFT JOIN remediation.categories k ON k.category = d.last_category
WHERE d.status = 'dead';
COMMENT ON VIEW remediation.dead_letters IS 'Outbox events given up on (a terminal error, or out of attempts); their appointments are flagged for review.';
COMMENT ON COLUMN remediation.dead_letters.outbox_id IS 'the event';
COMMENT ON COLUMN remediation.dead_letters.appointment_id IS 'its appointment';
COMMENT ON COLUMN remediation.dead_letters.type IS 'create, cancel or reschedule';
COMMENT ON COLUMN remediation.dead_letters.attempts IS 'attempts made';
COMMENT ON COLUMN remediation.dead_letters.last_category IS 'the category of the last failure';
COMMENT ON COLUMN remediation.dead_letters.last_error IS 'the last failure in full';
COMMENT ON COLUMN remediation.dead_letters.created_at IS 'when it was enqueued';
COMMENT ON COLUMN remediation.dead_letters.died_at IS 'when it was given up on';
COMMENT ON COLUMN remediation.dead_letters.recommended_action IS 'what to do, in words';

CREATE OR REPLACE VIEW remediation.integrity_issues AS
SELECT i.id, i.rule, i.table_name, i.row_id, i.detail, i.found_by, i.found_at
FROM calsync.integrity_issues i
WHERE i.resolved_at IS NULL;
COMMENT ON VIEW remediation.integrity_issues IS 'Open integrity issues: rows known to break a rule (listed by a pre-flight, a trigger or the runbook).';
COMMENT ON COLUMN remediation.integrity_issues.id IS 'the issue';
COMMENT ON COLUMN remediation.integrity_issues.rule IS 'the rule the row breaks';
COMMENT ON COLUMN remediation.integrity_issues.table_name IS 'the row''s table';
COMMENT ON COLUMN remediation.integrity_issues.row_id IS 'the row';
COMMENT ON COLUMN remediation.integrity_issues.detail IS 'what is wrong, in words';
COMMENT ON COLUMN remediation.integrity_issues.found_by IS 'what found it';
COMMENT ON COLUMN remediation.integrity_issues.found_at IS 'when';

-- The dashboard, as one row. Thresholds are calsync.settings (health_*):
--   CRITICAL: failed syncs >= health_failed_critical (default 10), or the 24 h success rate is below
--             health_success_rate_critical (default 0.8) with at least 10 attempts;
--   DEGRADED: any failed sync, dead event, failure older than 24 h, or pending sync older than 1 h;
--   HEALTHY:  none of these.
CREATE OR REPLACE VIEW remediation.sync_health AS
WITH t AS (
    SELECT
        (SELECT value::int FROM calsync.settings WHERE key = 'health_failed_critical') AS failed_critical,
        (SELECT value::numeric FROM calsync.settings WHERE key = 'health_success_rate_critical') AS rate_critical
), n AS MATERIALIZED (  -- each count once (inlined, every use would count again)
    SELECT
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show'))::int AS pending,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed')::int AS failed,
        (SELECT count(*) FROM appointments WHERE requires_manual_review)::int AS manual_review,
        (SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'dead')::int AS dead_events,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed'
            AND coalesce(last_sync_attempt_at, manual_review_flagged_at, updated_at) < now() - interval '24 hours')::int
            AS ancient_failures,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show')
            AND coalesce(last_sync_attempt_at, created_at) < now() - interval '1 hour')::int AS stale_pending,
        h.attempted_24h,
        h.synced_24h,
        (SELECT count(*) FROM calsync.integrity_issues WHERE resolved_at IS NULL)::int AS integrity_issues
    FROM (  -- one index-only pass (remediation_appointments_last_sync_attempt_index includes the status)
        SELECT count(*)::int AS attempted_24h, count(*) FILTER (WHERE calcom_sync_status = 'synced')::int AS synced_24h
        FROM appointments WHERE last_sync_attempt_at > now() - interval '24 hours'
    ) AS h
), a AS (
    SELECT n.*, t.*,
           CASE WHEN n.attempted_24h > 0 THEN round(100.0 * n.synced_24h / n.attempted_24h, 2) END AS success_rate_24h,
           array_remove(ARRAY[
               CASE WHEN n.failed >= t.failed_critical
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs (threshold ' || t.failed_critical || ')') END,
               CASE WHEN n.attempted_24h >= 10 AND n.synced_24h < t.rate_critical * n.attempted_24h
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'success_rate', 'count', n.attempted_24h - n.synced_24h,
                         'message', 'success rate ' || round(100.0 * n.synced_24h / n.attempted_24h, 2) || ' % over 24 h (threshold '
                                    || round(100 * t.rate_critical) || ' %)') END,
               CASE WHEN n.failed > 0 AND n.failed < t.failed_critical
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs') END,
               CASE WHEN n.dead_events > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'dead_events', 'count', n.dead_events,
                         'message', n.dead_events || ' outbox events given up on') END,
               CASE WHEN n.ancient_failures > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'ancient_failures', 'count', n.ancient_failures,
                         'message', n.ancient_failures || ' failures older than 24 h') END,
               CASE WHEN n.stale_pending > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'stale_pending', 'count', n.stale_pending,
                         'message', n.stale_pending || ' syncs pending for more than 1 h') END
           ], NULL) AS alerts
    FROM n, t
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical') THEN 'CRITICAL'
            WHEN cardinality(a.alerts) > 0 THEN 'DEGRADED' ELSE 'HEALTHY' END AS health,
       a.success_rate_24h, a.attempted_24h, a.pending, a.failed, a.manual_review, a.dead_events,
       a.ancient_failures, a.stale_pending, a.integrity_issues,
       (SELECT count(*) FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical')::int AS critical_alerts,
       to_jsonb(a.alerts) AS alerts
FROM a;
COMMENT ON VIEW remediation.sync_health IS
    'The sync dashboard in one row. CRITICAL: failed >= health_failed_critical (10) or 24 h success rate < health_success_rate_critical (80 %); DEGRADED: any failure, dead event, failure older than 24 h or pending older than 1 h; else HEALTHY.';
COMMENT ON COLUMN remediation.sync_health.health IS 'HEALTHY, DEGRADED or CRITICAL (thresholds in the view comment and calsync.settings)';
COMMENT ON COLUMN remediation.sync_health.success_rate_24h IS 'percent of appointments attempted in the last 24 h that are synced';
COMMENT ON COLUMN remediation.sync_health.attempted_24h IS 'appointments with a sync attempt in the last 24 h';
COMMENT ON COLUMN remediation.sync_health.pending IS 'live appointments waiting to sync';
COMMENT ON COLUMN remediation.sync_health.failed IS 'appointments whose sync failed';
COMMENT ON COLUMN remediation.sync_health.manual_review IS 'appointments flagged for a person';
COMMENT ON COLUMN remediation.sync_health.dead_events IS 'outbox events given up on';
COMMENT ON COLUMN remediation.sync_health.ancient_failures IS 'failed syncs whose last attempt is older than 24 h';
COMMENT ON COLUMN remediation.sync_health.stale_pending IS 'syncs pending for more than 1 h';
COMMENT ON COLUMN remediation.sync_health.integrity_issues IS 'open rows of calsync.integrity_issues';
COMMENT ON COLUMN remediation.sync_health.critical_alerts IS 'how many alerts are critical';
COMMENT ON COLUMN remediation.sync_health.alerts IS 'active alerts: [{severity, alert, count, message}]';

-- name: roles
-- from: sql/grants/roles.sql
-- The three roles and what each may do. Roles are cluster-wide: created only if missing.
--  calsync_readonly   SELECT on the remediation views, nothing else (the views' helper functions are
--                     SECURITY DEFINER, so no table grant is needed).
--  calsync_worker     exactly what `calsync worker` needs: read the booking tables, write only the sync
--                     columns of appointments and appointment_phases, and run the delivery functions.
--  calsync_remediator the runbook functions (SECURITY DEFINER) and the views.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_readonly') THEN
        CREATE ROLE calsync_readonly NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_worker') THEN
        CREATE ROLE calsync_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_remediator') THEN
        CREATE ROLE calsync_remediator NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA remediation TO calsync_readonly, calsync_remediator;
GRANT SELECT ON ALL TABLES IN SCHEMA remediation TO calsync_readonly;
REVOKE SELECT ON remediation.log, remediation.runs, remediation.categories, remediation.failure_diagnoses
    FROM calsync_readonly;
GRANT SELECT ON remediation.categories TO calsync_readonly;
GRANT calsync_readonly TO calsync_remediator;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA remediation FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remediation.failure_category(bigint), remediation.blocking_cause(bigint),
    remediation.host_conflicts_of(bigint), remediation.failed_syncs_without_jit(),
    remediation.duplicate_bookings_without_jit(), remediation.host_conflicts_without_jit(),
    remediation.composites_without_phases_without_jit() TO calsync_readonly;
GRANT USAGE ON SCHEMA remediation TO calsync_worker;
GRANT EXECUTE ON FUNCTION remediation.host_conflicts_of(bigint) TO calsync_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA remediation TO calsync_remediator;
GRANT SELECT ON remediation.log, remediation.runs TO calsync_remediator;
GRANT INSERT, UPDATE ON remediation.runs TO calsync_remediator;

GRANT USAGE ON SCHEMA calsync TO calsync_worker;
-- it reads what it syncs (sync_state) and the queue's depth (metrics); every change goes through the
-- delivery functions, which are SECURITY DEFINER: it cannot change an appointment itself
GRANT SELECT ON appointments, appointment_phases, customers, services, staff, calcom_event_map TO calsync_worker;
GRANT SELECT ON calsync.outbox, calsync.outbox_delivery, calsync.synced_bookings, calsync.superseded_phases,
                calsync.integrity_issues TO calsync_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON calsync.outbox_listeners TO calsync_worker;
GRANT EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz) FROM PUBLIC;

-- name: drop
DROP SCHEMA remediation CASCADE;
DELETE FROM calsync.settings WHERE key IN ('health_failed_critical', 'health_success_rate_critical');
DO $$
DECLARE
    r text;
BEGIN
    REVOKE ALL ON ALL TABLES IN SCHEMA calsync FROM calsync_worker, calsync_readonly, calsync_remediator;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA calsync FROM calsync_worker, calsync_readonly, calsync_remediator;
    REVOKE ALL ON SCHEMA calsync FROM calsync_worker, calsync_readonly, calsync_remediator;
    REVOKE ALL ON appointments, appointment_phases, customers, services, staff, calcom_event_map
        FROM calsync_worker, calsync_readonly, calsync_remediator;
    FOREACH r IN ARRAY ARRAY['calsync_remediator', 'calsync_worker', 'calsync_readonly'] LOOP
        BEGIN
            EXECUTE format('DROP ROLE %I', r);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % is still used by another database of this cluster: kept', r;
        END;
    END LOOP;
END
$$;
