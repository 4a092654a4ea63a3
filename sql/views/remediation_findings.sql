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
