-- Frozen SQL of revision 0022 (never edit; sql/ holds the current definitions).

-- name: table
CREATE TABLE calsync.reconcile_findings (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                 text NOT NULL
        CONSTRAINT reconcile_findings_kind_known CHECK (kind IN ('orphan_at_calcom', 'orphan_here', 'drift')),
    uid                  text NOT NULL,
    booking_id           bigint,
    appointment_id       bigint,
    slot                 bigint,
    repair               text NOT NULL
        CONSTRAINT reconcile_findings_repair_known
        CHECK (repair IN ('cancel_at_calcom', 'requeue', 'apply_reschedule', 'adopt_successor', 'person')),
    detail               text NOT NULL,
    successor_uid        text,
    successor_booking_id bigint,
    calcom_start         timestamptz,
    calcom_end           timestamptz,
    our_start            timestamptz,
    our_end              timestamptz,
    event_type_id        bigint,
    found_by             uuid NOT NULL,
    found_at             timestamptz NOT NULL,
    last_seen_by         uuid NOT NULL,
    last_seen_at         timestamptz NOT NULL,
    resolved_at          timestamptz,
    resolved_by          uuid,
    resolution           text,
    CONSTRAINT reconcile_findings_resolution_needs_time CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX reconcile_findings_one_open_per_booking ON calsync.reconcile_findings (kind, uid)
    WHERE resolved_at IS NULL;
COMMENT ON TABLE calsync.reconcile_findings IS
    'What `calsync reconcile` found between Cal.com and the appointments synced here; resolved (repaired, or not found again), never deleted.';
COMMENT ON COLUMN calsync.reconcile_findings.kind IS 'orphan_at_calcom: a live booking no live appointment holds; orphan_here: our booking Cal.com lost or cancelled; drift: time or length differ';
COMMENT ON COLUMN calsync.reconcile_findings.repair IS 'what --repair does: cancel_at_calcom, requeue, apply_reschedule, adopt_successor; person: nothing, a person decides';
COMMENT ON COLUMN calsync.reconcile_findings.slot IS '0: the appointment''s own booking; else the phase id (calsync.synced_bookings.slot)';
COMMENT ON INDEX calsync.reconcile_findings_one_open_per_booking IS 'One open finding per kind and Cal.com booking: a reconciliation that finds it again updates it.';

-- name: contract
-- from: sql/types/reconcile_contract.sql
-- The typed contract of `calsync reconcile` (worker/ops/reconcile_contract.py has the Python twin of each type,
-- field for field; tests/test_contract.py compares them). Created by revision 0022; a change is a new revision
-- (ALTER TYPE … ADD ATTRIBUTE, which appends).

-- what Cal.com holds: one booking as listed (GET /v2/bookings) or read by uid (GET /v2/bookings/{uid}); facts only,
-- remediation.reconcile_compare decides what they mean. found = false: a uid we asked for that Cal.com does not
-- know (404). metadata_*: the raw values of our metadata keys (calsync_appointment_id, calsync_phase_id), if any.
-- cancellation_reason: Cal.com's, cut to 200 characters (whether calsync cancelled it is decided from it here).
CREATE TYPE calsync.calcom_booking AS (
    uid text, booking_id bigint, event_type_id bigint, status text, start_at timestamptz, end_at timestamptz,
    metadata_appointment text, metadata_phase text, rescheduled_to_uid text, rescheduled_from_uid text,
    cancellation_reason text, found boolean);

-- what reconciliation found: one row of calsync.reconcile_findings (id NULL in a dry run)
CREATE TYPE calsync.reconcile_finding AS (
    id bigint, kind text, uid text, booking_id bigint, appointment_id bigint, slot bigint, repair text, detail text,
    successor_uid text, successor_booking_id bigint, calcom_start timestamptz, calcom_end timestamptz,
    our_start timestamptz, our_end timestamptz, event_type_id bigint, is_new boolean);

-- name: functions
-- from: sql/functions/remediation/reconcile_event_types.sql
-- from: sql/functions/remediation/reconcile_ours.sql
-- from: sql/functions/remediation/reconcile_interval.sql
-- from: sql/functions/remediation/reconcile_compare.sql
-- from: sql/functions/remediation/reconcile_bookings.sql
-- from: sql/functions/remediation/reconcile_set_phase_booking.sql
-- from: sql/functions/remediation/repair_reconcile_findings.sql
-- from: sql/functions/remediation/reconcile_cancellations.sql
-- from: sql/functions/remediation/record_reconcile_cancellation.sql
-- from: sql/functions/remediation/undo_reconcile.sql
-- The Cal.com event types reconciliation pages through: every event type calsync books with (the services', the
-- segments' in calcom_event_map) or has bookings of (calsync.synced_bookings).
CREATE OR REPLACE FUNCTION remediation.reconcile_event_types() RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT t FROM (
        SELECT calcom_event_type_id FROM services
        UNION ALL SELECT coalesce(child_event_type_id, event_type_id) FROM calcom_event_map
        UNION ALL SELECT event_type_id FROM calsync.synced_bookings) AS x(t)
    WHERE t IS NOT NULL ORDER BY t
$$;
COMMENT ON FUNCTION remediation.reconcile_event_types() IS
    'The Cal.com event types `calsync reconcile` lists bookings of: those of the services, the segments and the bookings made.';

-- What we synced: the Cal.com booking of each live (bookable) appointment and staff-required phase whose interval
-- starts in [p_since, p_until): calsync.synced_bookings (the worker's record), else the uid the app stored itself
-- (appointments.calcom_v2_booking_uid, appointment_phases.calcom_booking_uid). unsettled: the appointment has an
-- undelivered or dead event in calsync.outbox, so its booking may be changing right now (or the failure is
-- listed in remediation.failed_syncs): reconciliation leaves it to the worker.
CREATE OR REPLACE FUNCTION remediation.reconcile_ours(p_since timestamptz, p_until timestamptz DEFAULT NULL)
RETURNS TABLE (appointment_id bigint, slot bigint, uid text, booking_id bigint, our_start timestamptz,
               our_end timestamptz, event_type_id bigint, synced_start timestamptz, synced_end timestamptz,
               unsettled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH ours AS (
        SELECT a.id, s.slot, s.uid, s.booking_id,
               CASE WHEN s.slot = 0 THEN a.starts_at ELSE p.start_time END AS our_start,
               CASE WHEN s.slot = 0 THEN a.ends_at ELSE p.end_time END AS our_end,
               s.event_type_id, s.start_at, s.end_at
        FROM calsync.synced_bookings s
        JOIN appointments a ON a.id = s.appointment_id
        LEFT JOIN appointment_phases p ON p.id = s.slot AND p.appointment_id = a.id
        WHERE calsync.is_bookable_status(a.status) AND (s.slot = 0 OR p.id IS NOT NULL)
        UNION ALL
        SELECT a.id, 0, a.calcom_v2_booking_uid,
               CASE WHEN a.calcom_v2_booking_id ~ '^[0-9]{1,18}$' THEN a.calcom_v2_booking_id::bigint END,
               a.starts_at, a.ends_at,
               s.calcom_event_type_id, NULL, NULL
        FROM appointments a LEFT JOIN services s ON s.id = a.service_id
        WHERE a.calcom_v2_booking_uid IS NOT NULL AND NOT a.is_composite AND calsync.is_bookable_status(a.status)
          AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings x WHERE x.appointment_id = a.id)
        UNION ALL
        SELECT a.id, p.id, p.calcom_booking_uid, p.calcom_booking_id, p.start_time, p.end_time, NULL, NULL, NULL
        FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
        WHERE p.calcom_booking_uid IS NOT NULL AND a.is_composite AND p.staff_required
          AND calsync.is_bookable_status(a.status)
          AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings x WHERE x.appointment_id = a.id)
    )
    SELECT o.id, o.slot, o.uid, o.booking_id, o.our_start, o.our_end, o.event_type_id, o.start_at, o.end_at,
           EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = o.id::text)
    FROM ours o
    WHERE o.our_start >= p_since AND (p_until IS NULL OR o.our_start < p_until)
    ORDER BY o.id, o.slot
$$;
COMMENT ON FUNCTION remediation.reconcile_ours(timestamptz, timestamptz) IS
    'The Cal.com bookings of live appointments and phases starting in [since, until), as synced here; unsettled: an event of the appointment is still in calsync.outbox.';

-- An interval as reconciliation writes it: in UTC, to the minute.
CREATE OR REPLACE FUNCTION remediation.reconcile_interval(p_start timestamptz, p_end timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(to_char(p_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '?') || '–'
           || coalesce(to_char(p_end AT TIME ZONE 'UTC', 'HH24:MI'), '?') || ' UTC'
$$;
COMMENT ON FUNCTION remediation.reconcile_interval(timestamptz, timestamptz) IS 'An interval in UTC to the minute, for reconciliation''s findings.';

-- Reconciliation's one decision: what Cal.com holds (p_bookings, as `calsync reconcile` listed and read it) against
-- what we synced (remediation.reconcile_ours) in [p_since, p_until). Every finding names its repair:
--  orphan_here      one of our bookings Cal.com does not know (404) or cancelled with no live successor.
--                   requeue: lost (unknown there, or cancelled by calsync itself while the appointment is live):
--                   the worker books it again. person: cancelled at Cal.com by the attendee or host.
--  drift            requeue: Cal.com has our booking at another time or length; the salon's time holds (the
--                   worker moves it). An outside reschedule (our uid cancelled with rescheduledToUid, its last live
--                   successor elsewhere): apply_reschedule (the appointment takes the new time if the integrity
--                   rules accept it, else a person decides); adopt_successor when the successor is at the salon's
--                   own time (a reply the worker lost); person for a phase (one phase cannot move alone).
--  orphan_at_calcom a live booking no live appointment of ours holds. With our metadata: cancel_at_calcom when its
--                   appointment is cancelled or gone or the slot's recorded booking is live (a second booking);
--                   requeue when the slot has none recorded, or only a lost one (a lost answer: the worker adopts it
--                   by its metadata); person otherwise (moved from outside the window, or recorded one cancelled
--                   outside). Without our metadata (made at Cal.com): person.
-- Appointments with an event still in calsync.outbox are left out (the worker is on them, or they are failed).
CREATE OR REPLACE FUNCTION remediation.reconcile_compare(p_bookings calsync.calcom_booking[], p_since timestamptz,
                                                         p_until timestamptz DEFAULT NULL)
RETURNS SETOF calsync.reconcile_finding
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH RECURSIVE b AS (  -- one row per uid; a booking Cal.com has wins over a 404 for the same uid
        SELECT DISTINCT ON (x.uid) x.*, (coalesce(x.found, false)
               AND lower(coalesce(x.status, '')) NOT IN ('cancelled', 'rejected')) AS live
        FROM unnest(p_bookings) AS x WHERE x.uid IS NOT NULL
        ORDER BY x.uid, x.found DESC NULLS LAST
    ),
    ours AS (SELECT * FROM remediation.reconcile_ours(p_since, p_until)),
    chain AS (  -- from each of our bookings along rescheduledToUid, at most 5 hops
        SELECT o.uid AS origin, b.uid, b.live, b.found, b.rescheduled_to_uid, 0 AS hop
        FROM ours o JOIN b ON b.uid = o.uid WHERE NOT o.unsettled
        UNION ALL
        SELECT c.origin, n.uid, n.live, n.found, n.rescheduled_to_uid, c.hop + 1
        FROM chain c JOIN b n ON n.uid = c.rescheduled_to_uid
        WHERE NOT c.live AND c.found AND c.hop < 5 AND n.uid <> c.origin
    ),
    tail AS (SELECT DISTINCT ON (c.origin) c.origin, c.uid, c.hop FROM chain c ORDER BY c.origin, c.hop DESC),
    -- uids held by an appointment that is not cancelled (any time, any status): never an orphan at Cal.com
    held AS (
        SELECT s.uid FROM calsync.synced_bookings s JOIN appointments a ON a.id = s.appointment_id
        WHERE a.status NOT IN ('cancelled', 'no_show')
        UNION SELECT a.calcom_v2_booking_uid FROM appointments a
        WHERE a.calcom_v2_booking_uid IS NOT NULL AND a.status NOT IN ('cancelled', 'no_show')
        UNION SELECT p.calcom_booking_uid FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
        WHERE p.calcom_booking_uid IS NOT NULL AND a.status NOT IN ('cancelled', 'no_show')
        UNION SELECT t.uid FROM tail t WHERE t.hop > 0
    ),
    here AS (  -- our bookings against Cal.com's
        SELECT o.*, b0.found AS found0, b0.live AS live0, b0.start_at AS start0, b0.end_at AS end0,
               f.uid AS f_uid, f.booking_id AS f_id, f.found AS f_found, f.live AS f_live, f.start_at AS f_start,
               f.end_at AS f_end, f.cancellation_reason AS f_reason, t.hop
        FROM ours o
        JOIN b b0 ON b0.uid = o.uid
        JOIN tail t ON t.origin = o.uid
        JOIN b f ON f.uid = t.uid
        WHERE NOT o.unsettled
    ),
    found_here AS (
        SELECT h.*,
            CASE WHEN NOT h.found0 THEN 'orphan_here'
                 WHEN h.live0 THEN CASE WHEN (h.start0, h.end0) IS DISTINCT FROM (h.our_start, h.our_end) THEN 'drift' END
                 WHEN h.hop > 0 AND h.f_live THEN 'drift'
                 ELSE 'orphan_here' END AS kind,
            (h.f_reason LIKE 'Cancelled in the salon system%' OR h.f_reason LIKE 'calsync%') AS by_calsync
        FROM here h
    ),
    calcom AS (  -- Cal.com's live bookings in the window that nothing of ours holds
        SELECT b.*, a.id AS a_id, a.status AS a_status,
               CASE WHEN b.metadata_appointment ~ '^[0-9]{1,18}$' THEN b.metadata_appointment::bigint END AS m_app,
               CASE WHEN b.metadata_phase ~ '^[0-9]{1,18}$' THEN b.metadata_phase::bigint ELSE 0 END AS m_slot
        FROM b
        LEFT JOIN appointments a ON b.metadata_appointment ~ '^[0-9]{1,18}$' AND a.id = b.metadata_appointment::bigint
        WHERE b.live AND b.start_at >= p_since AND (p_until IS NULL OR b.start_at < p_until)
          AND b.uid NOT IN (SELECT h.uid FROM held h)
    ),
    found_calcom AS (
        SELECT c.*, r.uid AS recorded,
            CASE WHEN c.m_app IS NULL THEN 'person'
                 WHEN c.a_id IS NULL OR c.a_status IN ('cancelled', 'no_show') THEN 'cancel_at_calcom'
                 WHEN NOT calsync.is_bookable_status(c.a_status) THEN 'person'
                 WHEN c.m_slot <> 0 AND NOT EXISTS (SELECT 1 FROM appointment_phases p
                                                    WHERE p.id = c.m_slot AND p.appointment_id = c.a_id) THEN 'cancel_at_calcom'
                 WHEN r.uid IS NULL THEN 'requeue'  -- none recorded: a lost reply, the worker adopts it
                 WHEN c.rescheduled_from_uid IS NOT NULL THEN 'person'  -- moved at Cal.com from outside the window
                 WHEN rb.live THEN 'cancel_at_calcom'  -- the slot's recorded booking is live: this one is a second
                 -- the recorded one is lost (and forgotten by its own requeue): the worker adopts this one
                 WHEN rb.uid IS NOT NULL AND (NOT rb.found OR rb.cancellation_reason LIKE 'Cancelled in the salon system%'
                                              OR rb.cancellation_reason LIKE 'calsync%') THEN 'requeue'
                 ELSE 'person' END AS repair
        FROM calcom c
        LEFT JOIN LATERAL (  -- the booking recorded for the slot the metadata names
            SELECT coalesce(
                (SELECT s.uid FROM calsync.synced_bookings s WHERE s.appointment_id = c.a_id AND s.slot = c.m_slot),
                (SELECT a.calcom_v2_booking_uid FROM appointments a WHERE a.id = c.a_id AND c.m_slot = 0 AND NOT a.is_composite),
                (SELECT p.calcom_booking_uid FROM appointment_phases p WHERE p.id = c.m_slot AND p.appointment_id = c.a_id)) AS uid
        ) AS r ON c.a_id IS NOT NULL
        LEFT JOIN b rb ON rb.uid = r.uid
        WHERE c.m_app IS NULL OR NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = c.m_app::text)
    )
    SELECT NULL::bigint, h.kind, h.uid, h.booking_id, h.appointment_id, h.slot,
        CASE WHEN h.kind = 'orphan_here' THEN CASE WHEN NOT h.f_found OR h.by_calsync THEN 'requeue' ELSE 'person' END
             WHEN h.live0 THEN 'requeue'
             WHEN (h.f_start, h.f_end) IS NOT DISTINCT FROM (h.our_start, h.our_end) THEN 'adopt_successor'
             WHEN h.slot = 0 THEN 'apply_reschedule'
             ELSE 'person' END,
        CASE WHEN h.kind = 'orphan_here' AND NOT h.found0
                 THEN format('booking %s of appointment #%s is unknown at Cal.com (404): lost; requeued, the worker books it again', h.uid, h.appointment_id)
             WHEN h.kind = 'orphan_here' AND NOT h.f_found
                 THEN format('booking %s of appointment #%s was moved at Cal.com to %s, which Cal.com does not know (404): lost; requeued, the worker books it again', h.uid, h.appointment_id, h.f_uid)
             WHEN h.kind = 'orphan_here' AND h.by_calsync
                 THEN format('booking %s of live appointment #%s was cancelled by calsync: lost; requeued, the worker books it again', h.f_uid, h.appointment_id)
             WHEN h.kind = 'orphan_here'
                 THEN format('booking %s of appointment #%s was cancelled at Cal.com by the attendee or host: cancel the appointment in the salon app, or requeue it to book it again', h.f_uid, h.appointment_id)
             WHEN h.live0
                 THEN format('Cal.com has booking %s at %s, the salon at %s: the salon''s time holds; requeued, the worker moves the booking',
                             h.uid, remediation.reconcile_interval(h.start0, h.end0), remediation.reconcile_interval(h.our_start, h.our_end))
             WHEN (h.f_start, h.f_end) IS NOT DISTINCT FROM (h.our_start, h.our_end)
                 THEN format('booking %s of appointment #%s was moved at Cal.com to %s at the salon''s own time (a reply the worker lost): %s is recorded as its booking', h.uid, h.appointment_id, h.f_uid, h.f_uid)
             WHEN h.slot = 0
                 THEN format('booking %s of appointment #%s was moved at Cal.com (attendee or host) to %s at %s, the salon has %s: the appointment takes the new time if the integrity rules accept it',
                             h.uid, h.appointment_id, h.f_uid, remediation.reconcile_interval(h.f_start, h.f_end), remediation.reconcile_interval(h.our_start, h.our_end))
             ELSE format('booking %s of phase %s of appointment #%s was moved at Cal.com to %s at %s: one phase cannot move alone; move the appointment in the salon app, or requeue it to move the booking back',
                         h.uid, h.slot, h.appointment_id, h.f_uid, remediation.reconcile_interval(h.f_start, h.f_end)) END,
        CASE WHEN h.kind = 'drift' AND NOT h.live0 THEN h.f_uid END,
        CASE WHEN h.kind = 'drift' AND NOT h.live0 THEN h.f_id END,
        CASE WHEN h.live0 THEN h.start0 WHEN h.f_live THEN h.f_start END,
        CASE WHEN h.live0 THEN h.end0 WHEN h.f_live THEN h.f_end END,
        h.our_start, h.our_end, h.event_type_id, NULL::boolean
    FROM found_here h WHERE h.kind IS NOT NULL
    UNION ALL
    SELECT NULL::bigint, 'orphan_at_calcom', c.uid, c.booking_id, c.a_id, CASE WHEN c.m_app IS NOT NULL THEN c.m_slot END,
        c.repair,
        CASE WHEN c.m_app IS NULL
                 THEN format('booking %s at %s was made at Cal.com, not by calsync (no calsync metadata): enter it in the salon app, or cancel it at Cal.com',
                             c.uid, remediation.reconcile_interval(c.start_at, c.end_at))
             WHEN c.a_id IS NULL
                 THEN format('booking %s carries calsync metadata of appointment #%s, which does not exist here: cancelled at Cal.com', c.uid, c.m_app)
             WHEN c.a_status IN ('cancelled', 'no_show')
                 THEN format('booking %s of appointment #%s, which is %s here: cancelled at Cal.com', c.uid, c.a_id, c.a_status)
             WHEN c.repair = 'person' AND NOT calsync.is_bookable_status(c.a_status)
                 THEN format('booking %s of appointment #%s, which is %s here: a person decides', c.uid, c.a_id, c.a_status)
             WHEN c.repair = 'cancel_at_calcom' AND c.recorded IS NULL
                 THEN format('booking %s of appointment #%s names phase %s, which it no longer has: cancelled at Cal.com', c.uid, c.a_id, c.m_slot)
             WHEN c.repair = 'cancel_at_calcom'
                 THEN format('booking %s is a second booking of appointment #%s (slot %s has the live booking %s): cancelled at Cal.com', c.uid, c.a_id, c.m_slot, c.recorded)
             WHEN c.repair = 'requeue' AND c.recorded IS NULL
                 THEN format('booking %s of appointment #%s was never recorded here (a reply the worker lost): requeued, the worker adopts it by its metadata', c.uid, c.a_id)
             WHEN c.repair = 'requeue'
                 THEN format('booking %s of appointment #%s was never recorded here, and the one recorded (%s) is lost: requeued, the worker adopts this one by its metadata', c.uid, c.a_id, c.recorded)
             WHEN c.rescheduled_from_uid IS NOT NULL
                 THEN format('booking %s of appointment #%s was moved at Cal.com from %s (outside the window) while %s is recorded: a person decides, or reconcile with an earlier --since', c.uid, c.a_id, c.rescheduled_from_uid, c.recorded)
             ELSE format('booking %s of appointment #%s was never recorded here, and the one recorded (%s) was cancelled at Cal.com outside the salon: a person decides', c.uid, c.a_id, c.recorded) END,
        NULL, NULL, c.start_at, c.end_at, NULL, NULL, c.event_type_id, NULL::boolean
    FROM found_calcom c
$$;
COMMENT ON FUNCTION remediation.reconcile_compare(calsync.calcom_booking[], timestamptz, timestamptz) IS
    'What Cal.com holds against what we synced in [since, until): orphans at Cal.com, orphans here and drift, each with its repair (cancel_at_calcom, requeue, apply_reschedule, adopt_successor, person).';

-- Record what reconciliation found: p_bookings is a JSON array of calsync.calcom_booking (the Python twin is
-- worker/ops/reconcile_contract.py CalcomBooking), what Cal.com holds in [p_since, p_until) of the event types
-- listed, plus every booking of ours read by uid. remediation.reconcile_compare decides; this function keeps the
-- findings in calsync.reconcile_findings: a finding still open is seen again (last_seen_*), a new one inserted,
-- and an open one in the window that was not found again is resolved (it settled by itself). Never deleted.
-- With p_dry_run (the default) nothing is recorded: the findings are returned, is_new against the open ones.
CREATE OR REPLACE FUNCTION remediation.reconcile_bookings(p_run_id uuid, p_bookings jsonb, p_since timestamptz,
                                                          p_until timestamptz DEFAULT NULL,
                                                          p_dry_run boolean DEFAULT true,
                                                          p_now timestamptz DEFAULT now())
RETURNS SETOF calsync.reconcile_finding
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_bookings calsync.calcom_booking[] := ARRAY(
        SELECT r FROM jsonb_populate_recordset(NULL::calsync.calcom_booking, coalesce(p_bookings, '[]')) AS r);
    f calsync.reconcile_finding;
    v_id bigint;
    v_repair text;
    v_detail text;
BEGIN
    IF p_dry_run THEN
        RETURN QUERY
        SELECT o.id, c.kind, c.uid, c.booking_id, c.appointment_id, c.slot, c.repair, c.detail, c.successor_uid,
               c.successor_booking_id, c.calcom_start, c.calcom_end, c.our_start, c.our_end, c.event_type_id,
               o.id IS NULL
        FROM remediation.reconcile_compare(v_bookings, p_since, p_until) AS c
        LEFT JOIN calsync.reconcile_findings o ON o.kind = c.kind AND o.uid = c.uid AND o.resolved_at IS NULL;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('calsync.reconcile_findings'));  -- one recording run at a time
    FOR f IN SELECT * FROM remediation.reconcile_compare(v_bookings, p_since, p_until) LOOP
        UPDATE calsync.reconcile_findings o
        -- an outside reschedule the integrity rules refused stays a person's while the finding is open
        SET booking_id = f.booking_id, appointment_id = f.appointment_id, slot = f.slot,
            repair = CASE WHEN o.repair = 'person' AND f.repair = 'apply_reschedule' THEN o.repair ELSE f.repair END,
            detail = CASE WHEN o.repair = 'person' AND f.repair = 'apply_reschedule' THEN o.detail ELSE f.detail END,
            successor_uid = f.successor_uid, successor_booking_id = f.successor_booking_id,
            calcom_start = f.calcom_start, calcom_end = f.calcom_end, our_start = f.our_start, our_end = f.our_end,
            event_type_id = f.event_type_id, last_seen_by = p_run_id, last_seen_at = p_now
        WHERE o.kind = f.kind AND o.uid = f.uid AND o.resolved_at IS NULL
        RETURNING o.id, o.repair, o.detail INTO v_id, v_repair, v_detail;
        f.is_new := v_id IS NULL;
        IF NOT f.is_new THEN
            f.id := v_id;
            f.repair := v_repair;
            f.detail := v_detail;
        ELSE
            INSERT INTO calsync.reconcile_findings
                (kind, uid, booking_id, appointment_id, slot, repair, detail, successor_uid, successor_booking_id,
                 calcom_start, calcom_end, our_start, our_end, event_type_id, found_by, found_at, last_seen_by,
                 last_seen_at)
            VALUES (f.kind, f.uid, f.booking_id, f.appointment_id, f.slot, f.repair, f.detail, f.successor_uid,
                    f.successor_booking_id, f.calcom_start, f.calcom_end, f.our_start, f.our_end, f.event_type_id,
                    p_run_id, p_now, p_run_id, p_now)
            RETURNING id INTO f.id;
        END IF;
        RETURN NEXT f;
    END LOOP;
    UPDATE calsync.reconcile_findings o
    SET resolved_at = p_now, resolved_by = p_run_id, resolution = 'not found again by reconcile run ' || p_run_id
    WHERE o.resolved_at IS NULL AND o.last_seen_by IS DISTINCT FROM p_run_id
      AND coalesce(o.our_start, o.calcom_start) >= p_since
      AND (p_until IS NULL OR coalesce(o.our_start, o.calcom_start) < p_until);
END
$$;
COMMENT ON FUNCTION remediation.reconcile_bookings(uuid, jsonb, timestamptz, timestamptz, boolean, timestamptz) IS
    'Compare what Cal.com holds (calsync.calcom_booking JSON) with what we synced and keep the findings in calsync.reconcile_findings (a dry run, the default, records nothing); returns them.';

-- A phase's Cal.com booking columns set by reconciliation, logged (table appointment_phases, action update, with
-- the columns before and after; remediation.undo_reconcile puts them back).
CREATE OR REPLACE FUNCTION remediation.reconcile_set_phase_booking(p_run_id uuid, p_reason text, p_phase_id bigint,
                                                                   p_uid text, p_booking_id bigint, p_status text)
RETURNS remediation.change
LANGUAGE plpgsql AS $$
DECLARE
    v_before jsonb := (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id',
                                                 calcom_booking_id, 'calcom_sync_status', calcom_sync_status)
                       FROM appointment_phases WHERE id = p_phase_id FOR UPDATE);
BEGIN
    UPDATE appointment_phases SET calcom_booking_uid = p_uid, calcom_booking_id = p_booking_id,
        calcom_sync_status = p_status, updated_at = now()
    WHERE id = p_phase_id;
    RETURN remediation.record(p_run_id, 'reconcile', p_reason, 'appointment_phases', p_phase_id, 'update', v_before,
        (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id', calcom_booking_id,
                                   'calcom_sync_status', calcom_sync_status) FROM appointment_phases WHERE id = p_phase_id));
END
$$;
COMMENT ON FUNCTION remediation.reconcile_set_phase_booking(uuid, text, bigint, text, bigint, text) IS
    'Set a phase''s Cal.com booking (uid, id, sync status) for reconciliation and log it before and after.';

-- Runbook step reconcile: repair the open findings of reconciliation that are ours to fix in our own rows, as an
-- audited run (remediation.log, before and after images; remediation.undo_reconcile reverts it). The rule: the
-- salon's database is the source of truth for the bookings calsync made, so
--  requeue           (lost booking, drift of time or length, a booking we never recorded) the appointment is
--                    queued for the worker: what we recorded of a lost booking is forgotten first (it books again),
--                    of a drifted one Cal.com's time is recorded (it moves it back), a booking never recorded is
--                    adopted by the worker's lookup by metadata;
--  apply_reschedule  an attendee or host moved the booking at Cal.com: the appointment takes the new time and the
--                    new booking if the integrity rules accept it (host busy time, one live slot, ...); a refusal
--                    turns the finding into a person's, with the rule that refused it;
--  adopt_successor   the successor is at the salon's own time: it is recorded as the booking.
-- Bookings at Cal.com to cancel (cancel_at_calcom) are cancelled by `calsync reconcile --repair` through the
-- Cal.com client and recorded with remediation.record_reconcile_cancellation; person findings stay listed.
-- Each finding is re-checked under the appointment's lock: one whose appointment is no longer live or has an
-- event in calsync.outbox again is left for the next reconciliation. p_dry_run (the default) changes nothing.
CREATE OR REPLACE FUNCTION remediation.repair_reconcile_findings(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL, p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    f calsync.reconcile_findings%ROWTYPE;
    v_writer text := current_setting('calsync.writer', true);
    v_ok boolean;
    v_before jsonb;
    v_row jsonb;
    v_event uuid;
    v_change remediation.change;
    v_message text;
    v_rule text;
    v_uid text;
    v_id bigint;
BEGIN
    FOR f IN SELECT * FROM calsync.reconcile_findings o
             WHERE o.resolved_at IS NULL AND o.repair IN ('requeue', 'apply_reschedule', 'adopt_successor')
             ORDER BY o.id LIMIT p_limit
    LOOP
        PERFORM 1 FROM calsync.reconcile_findings o WHERE o.id = f.id AND o.resolved_at IS NULL FOR UPDATE;
        CONTINUE WHEN NOT FOUND;  -- repaired by a run at the same time
        SELECT calsync.is_bookable_status(a.status)  -- an event of its own (this run's) is no reason to stop
               AND NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = a.id::text
                                 AND e.payload->>'requeued_by_run' IS DISTINCT FROM p_run_id::text) INTO v_ok
        FROM appointments a WHERE a.id = f.appointment_id FOR UPDATE;
        CONTINUE WHEN NOT coalesce(v_ok, false);  -- changed meanwhile: the next reconciliation looks again
        IF p_dry_run THEN
            RETURN NEXT ('reconcile', 'reconcile_findings', f.id, 'update',
                         jsonb_build_object('kind', f.kind, 'uid', f.uid, 'appointment_id', f.appointment_id),
                         jsonb_build_object('repair', f.repair, 'detail', f.detail))::remediation.change;
            CONTINUE;
        END IF;
        PERFORM set_config('calsync.writer', 'worker', true);  -- our own changes enqueue nothing by themselves
        IF f.repair = 'apply_reschedule' THEN
            BEGIN
                v_before := (SELECT jsonb_build_object('starts_at', starts_at, 'ends_at', ends_at) FROM appointments
                             WHERE id = f.appointment_id);
                UPDATE appointments SET starts_at = f.calcom_start, ends_at = f.calcom_end, updated_at = p_now
                WHERE id = f.appointment_id;
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'appointment_times', f.appointment_id,
                    'update', v_before, (SELECT jsonb_build_object('starts_at', starts_at, 'ends_at', ends_at)
                                         FROM appointments WHERE id = f.appointment_id));
            EXCEPTION WHEN integrity_constraint_violation OR check_violation OR exclusion_violation
                           OR unique_violation OR raise_exception OR serialization_failure THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_rule = CONSTRAINT_NAME;
                v_before := jsonb_build_object('repair', f.repair, 'detail', f.detail);
                UPDATE calsync.reconcile_findings SET repair = 'person',
                    detail = f.detail || format('; refused by %s: %s; move the appointment in the salon app, or requeue it to move the booking back',
                                                coalesce(nullif(v_rule, ''), 'a rule'), v_message)
                WHERE id = f.id;
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'reconcile_findings', f.id, 'update',
                    v_before, (SELECT jsonb_build_object('repair', repair, 'detail', detail)
                               FROM calsync.reconcile_findings WHERE id = f.id));
                PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
                CONTINUE;
            END;
        END IF;
        IF f.repair IN ('apply_reschedule', 'adopt_successor') THEN
            v_uid := f.successor_uid;
            -- the successor is the booking now: in the worker's record and the app's columns
            v_row := (SELECT to_jsonb(s) FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot);
            INSERT INTO calsync.synced_bookings AS s (appointment_id, slot, uid, booking_id, start_at, end_at, event_type_id, synced_at)
            VALUES (f.appointment_id, f.slot, f.successor_uid, f.successor_booking_id, f.calcom_start, f.calcom_end,
                    f.event_type_id, p_now)
            ON CONFLICT (appointment_id, slot) DO UPDATE
                SET uid = excluded.uid, booking_id = excluded.booking_id, start_at = excluded.start_at,
                    end_at = excluded.end_at, event_type_id = coalesce(excluded.event_type_id, s.event_type_id),
                    synced_at = excluded.synced_at;
            RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'synced_bookings', f.appointment_id,
                CASE WHEN v_row IS NULL THEN 'insert' ELSE 'update' END, v_row,
                (SELECT to_jsonb(s) FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot));
            IF f.slot = 0 THEN
                v_change := remediation.change_appointment(p_run_id, 'reconcile', p_reason, f.appointment_id,
                    jsonb_build_object('calcom_v2_booking_uid', f.successor_uid,
                                       'calcom_v2_booking_id', f.successor_booking_id::text,
                                       'calcom_booking_id', f.successor_booking_id, 'calcom_sync_status', 'synced'),
                    false, 'true');
                RETURN NEXT v_change;
            ELSE
                RETURN NEXT remediation.reconcile_set_phase_booking(p_run_id, p_reason, f.slot, f.successor_uid,
                                                                    f.successor_booking_id, 'synced');
            END IF;
        ELSE  -- requeue
            v_row := (SELECT to_jsonb(s) FROM calsync.synced_bookings s
                      WHERE s.appointment_id = f.appointment_id AND s.slot = coalesce(f.slot, 0));
            IF f.kind = 'orphan_here' THEN
                -- lost: forget it, so that the worker books again (it would take a recorded uid for a booking)
                IF v_row IS NOT NULL AND v_row->>'uid' = f.uid THEN
                    DELETE FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot;
                    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'synced_bookings', f.appointment_id,
                                                   'delete', v_row, NULL);
                END IF;
                IF f.slot = 0 THEN
                    v_change := remediation.change_appointment(p_run_id, 'reconcile', p_reason, f.appointment_id,
                        jsonb_build_object('calcom_v2_booking_uid', NULL, 'calcom_v2_booking_id', NULL,
                                           'calcom_booking_id', NULL, 'calcom_sync_status', 'pending'),
                        false, format('a.calcom_v2_booking_uid IS NOT DISTINCT FROM %L OR a.calcom_v2_booking_uid IS NULL', f.uid));
                    IF v_change IS NOT NULL THEN
                        RETURN NEXT v_change;
                    END IF;
                ELSIF EXISTS (SELECT 1 FROM appointment_phases p WHERE p.id = f.slot AND p.calcom_booking_uid = f.uid) THEN
                    RETURN NEXT remediation.reconcile_set_phase_booking(p_run_id, p_reason, f.slot, NULL, NULL, 'pending');
                END IF;
            ELSIF f.kind = 'drift' THEN
                -- what Cal.com has is recorded, so that the worker sees the difference and moves it back
                INSERT INTO calsync.synced_bookings AS s (appointment_id, slot, uid, booking_id, start_at, end_at, event_type_id, synced_at)
                VALUES (f.appointment_id, f.slot, f.uid, f.booking_id, f.calcom_start, f.calcom_end, f.event_type_id, p_now)
                ON CONFLICT (appointment_id, slot) DO UPDATE
                    SET start_at = excluded.start_at, end_at = excluded.end_at, synced_at = excluded.synced_at;
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'synced_bookings', f.appointment_id,
                    CASE WHEN v_row IS NULL THEN 'insert' ELSE 'update' END, v_row,
                    (SELECT to_jsonb(s) FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot));
            END IF;
            IF f.kind <> 'orphan_here' OR f.slot <> 0 THEN
                v_change := remediation.change_appointment(p_run_id, 'reconcile', p_reason, f.appointment_id,
                    jsonb_build_object('calcom_sync_status', 'pending'), false, 'true');
                RETURN NEXT v_change;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = f.appointment_id::text
                             AND e.payload->>'requeued_by_run' = p_run_id::text) THEN  -- one event per appointment
                v_event := calsync.enqueue_sync(f.appointment_id, CASE WHEN f.kind = 'drift' THEN 'reschedule' ELSE 'create' END,
                    jsonb_build_object('appointment_id', f.appointment_id, 'requeued_by_run', p_run_id, 'reconcile', f.kind));
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'outbox', f.appointment_id, 'insert', NULL,
                                               jsonb_build_object('outbox_id', v_event, 'category', 'RECONCILE'));
            END IF;
        END IF;
        v_before := (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
                     FROM calsync.reconcile_findings WHERE id = f.id);
        UPDATE calsync.reconcile_findings SET resolved_at = p_now, resolved_by = p_run_id,
            resolution = format('repaired (%s) by run %s', f.repair, p_run_id)
        WHERE id = f.id;
        RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'reconcile_findings', f.id, 'update', v_before,
            (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
             FROM calsync.reconcile_findings WHERE id = f.id));
        PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.repair_reconcile_findings(boolean, text, uuid, integer, timestamptz) IS
    'Runbook step reconcile: requeue lost and drifted bookings, apply outside reschedules the integrity rules accept, adopt successors; logged, undone by remediation.undo_reconcile.';

-- The bookings `calsync reconcile --repair` cancels at Cal.com: open orphan_at_calcom findings whose repair is
-- cancel_at_calcom (they carry our metadata: calsync made them), re-checked now: still held by no appointment
-- that is not cancelled, and their appointment has no event in calsync.outbox.
CREATE OR REPLACE FUNCTION remediation.reconcile_cancellations(p_limit integer DEFAULT NULL)
RETURNS SETOF calsync.reconcile_finding
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.id, o.kind, o.uid, o.booking_id, o.appointment_id, o.slot, o.repair, o.detail, o.successor_uid,
           o.successor_booking_id, o.calcom_start, o.calcom_end, o.our_start, o.our_end, o.event_type_id, false
    FROM calsync.reconcile_findings o
    WHERE o.resolved_at IS NULL AND o.kind = 'orphan_at_calcom' AND o.repair = 'cancel_at_calcom'
      AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s JOIN appointments a ON a.id = s.appointment_id
                      WHERE s.uid = o.uid AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.calcom_v2_booking_uid = o.uid
                                                     AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
                      WHERE p.calcom_booking_uid = o.uid AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = o.appointment_id::text)
    ORDER BY o.id LIMIT p_limit
$$;
COMMENT ON FUNCTION remediation.reconcile_cancellations(integer) IS
    'Open findings of bookings calsync made that no live appointment holds: what `calsync reconcile --repair` cancels at Cal.com.';

-- What `calsync reconcile --repair` did at Cal.com to one cancel_at_calcom finding. Cancelled (or cancelled
-- already, or over: nothing left to cancel): logged as a change of the booking (table calcom_bookings, row its
-- Cal.com id, which no undo can revert) and the finding resolved (logged). Not cancelled: nothing is recorded, the
-- finding stays open with the answer in its detail, and the change returned says why.
CREATE OR REPLACE FUNCTION remediation.record_reconcile_cancellation(
    p_run_id uuid, p_finding_id bigint, p_reason text, p_cancelled boolean, p_http_status integer, p_message text,
    p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    f calsync.reconcile_findings%ROWTYPE;
    v_before jsonb;
BEGIN
    SELECT * INTO f FROM calsync.reconcile_findings
    WHERE id = p_finding_id AND resolved_at IS NULL AND repair = 'cancel_at_calcom' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT p_cancelled THEN
        UPDATE calsync.reconcile_findings
        SET detail = split_part(detail, ' [last cancel: ', 1) || format(' [last cancel: HTTP %s %s]',
                                                                       coalesce(p_http_status::text, '-'), left(p_message, 300))
        WHERE id = f.id;
        RETURN NEXT ('reconcile', 'calcom_bookings', coalesce(f.booking_id, 0), 'update',
                     jsonb_build_object('uid', f.uid, 'status', 'accepted'),
                     jsonb_build_object('uid', f.uid, 'error', p_message, 'http_status', p_http_status))::remediation.change;
        RETURN;
    END IF;
    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'calcom_bookings', coalesce(f.booking_id, 0), 'update',
        jsonb_build_object('uid', f.uid, 'status', 'accepted', 'appointment_id', f.appointment_id),
        jsonb_build_object('uid', f.uid, 'status', 'cancelled', 'http_status', p_http_status, 'answer', left(p_message, 300)));
    v_before := jsonb_build_object('resolved_at', f.resolved_at, 'resolved_by', f.resolved_by, 'resolution', f.resolution);
    UPDATE calsync.reconcile_findings SET resolved_at = p_now, resolved_by = p_run_id,
        resolution = format('cancelled at Cal.com by run %s', p_run_id)
    WHERE id = f.id;
    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'reconcile_findings', f.id, 'update', v_before,
        (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
         FROM calsync.reconcile_findings WHERE id = f.id));
END
$$;
COMMENT ON FUNCTION remediation.record_reconcile_cancellation(uuid, bigint, text, boolean, integer, text, timestamptz) IS
    'Record the cancellation at Cal.com of a booking calsync made that no live appointment holds (logged, finding resolved), or why it failed.';

-- Revert a reconcile repair run from its log, newest change first: the rows only reconciliation changes (the
-- worker's record calsync.synced_bookings, an appointment's times, a phase's booking columns, the findings) are
-- put back here, then remediation.undo reverts the rest of the run (the appointments' sync columns, withdrawing
-- events the worker has not taken yet). A booking cancelled at Cal.com stays cancelled: the undo logs that it did
-- not revert it. Our own writes enqueue nothing (calsync.writer = worker): the salon's rows are as they were, and
-- the next reconciliation finds what Cal.com still differs in.
CREATE OR REPLACE FUNCTION remediation.undo_reconcile(p_run_id uuid, p_reason text DEFAULT NULL)
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    l remediation.log%ROWTYPE;
    v_undo uuid := gen_random_uuid();
    v_reason text := coalesce(p_reason, 'undo of run ' || p_run_id);
    v_writer text := current_setting('calsync.writer', true);
    v_now jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM remediation.log WHERE run_id = p_run_id) THEN
        RAISE EXCEPTION 'remediation.undo_reconcile: no run %', p_run_id USING ERRCODE = 'P0002',
            HINT = 'List runs with: SELECT * FROM remediation.runs ORDER BY started_at DESC;';
    END IF;
    PERFORM set_config('calsync.writer', 'worker', true);
    FOR l IN SELECT * FROM remediation.log
             WHERE run_id = p_run_id AND undone_by IS NULL
               AND (table_name IN ('synced_bookings', 'appointment_times', 'reconcile_findings', 'calcom_bookings')
                    OR (table_name = 'appointment_phases' AND action = 'update'))
             ORDER BY id DESC FOR UPDATE
    LOOP
        IF l.table_name = 'synced_bookings' THEN
            v_now := (SELECT to_jsonb(s) FROM calsync.synced_bookings s
                      WHERE s.appointment_id = l.row_id AND s.slot = (coalesce(l.after, l.before)->>'slot')::bigint);
            DELETE FROM calsync.synced_bookings s
            WHERE s.appointment_id = l.row_id AND s.slot = (coalesce(l.after, l.before)->>'slot')::bigint;
            IF l.before IS NOT NULL THEN
                INSERT INTO calsync.synced_bookings SELECT * FROM jsonb_populate_record(NULL::calsync.synced_bookings, l.before);
            END IF;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id,
                CASE WHEN l.before IS NULL THEN 'delete' WHEN v_now IS NULL THEN 'insert' ELSE 'update' END, v_now, l.before);
        ELSIF l.table_name = 'appointment_times' THEN
            v_now := (SELECT jsonb_build_object('starts_at', starts_at, 'ends_at', ends_at) FROM appointments WHERE id = l.row_id);
            UPDATE appointments SET starts_at = (l.before->>'starts_at')::timestamptz,
                ends_at = (l.before->>'ends_at')::timestamptz, updated_at = now()
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', v_now, l.before);
        ELSIF l.table_name = 'appointment_phases' THEN
            v_now := (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id', calcom_booking_id,
                                                'calcom_sync_status', calcom_sync_status) FROM appointment_phases WHERE id = l.row_id);
            UPDATE appointment_phases SET calcom_booking_uid = l.before->>'calcom_booking_uid',
                calcom_booking_id = (l.before->>'calcom_booking_id')::bigint,
                calcom_sync_status = l.before->>'calcom_sync_status', updated_at = now()
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', v_now, l.before);
        ELSIF l.table_name = 'reconcile_findings' THEN
            v_now := (SELECT to_jsonb(o) FROM calsync.reconcile_findings o WHERE o.id = l.row_id);
            UPDATE calsync.reconcile_findings o SET
                resolved_at = CASE WHEN l.before ? 'resolved_at' THEN (l.before->>'resolved_at')::timestamptz ELSE o.resolved_at END,
                resolved_by = CASE WHEN l.before ? 'resolved_by' THEN (l.before->>'resolved_by')::uuid ELSE o.resolved_by END,
                resolution = CASE WHEN l.before ? 'resolution' THEN l.before->>'resolution' ELSE o.resolution END,
                repair = CASE WHEN l.before ? 'repair' THEN l.before->>'repair' ELSE o.repair END,
                detail = CASE WHEN l.before ? 'detail' THEN l.before->>'detail' ELSE o.detail END
            WHERE o.id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', l.after, l.before);
        ELSE  -- calcom_bookings: Cal.com cannot un-cancel a booking
            RETURN NEXT remediation.record(v_undo, 'undo', 'not reverted: Cal.com keeps booking ' || (l.after->>'uid')
                                           || ' cancelled (' || v_reason || ')', l.table_name, l.row_id, 'update', l.after, l.after);
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
    RETURN QUERY SELECT * FROM remediation.undo(p_run_id, p_reason);
    PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
END
$$;
COMMENT ON FUNCTION remediation.undo_reconcile(uuid, text) IS
    'Revert a reconcile repair run from its log: the worker''s record, times, phase bookings and findings here, the rest by remediation.undo; Cal.com cancellations are logged as not reverted.';

-- name: view
-- from: sql/views/remediation/reconcile_findings.sql
CREATE OR REPLACE VIEW remediation.reconcile_findings AS
SELECT o.id AS finding_id, o.kind, o.repair, o.uid, o.appointment_id, o.slot, o.calcom_start, o.calcom_end,
       o.our_start, o.our_end, o.successor_uid, o.detail,
       CASE o.repair
           WHEN 'cancel_at_calcom' THEN 'calsync made this booking and no live appointment holds it: `calsync reconcile --repair` cancels it at Cal.com'
           WHEN 'requeue' THEN '`calsync reconcile --repair` queues the appointment for the worker (the salon''s booking holds)'
           WHEN 'apply_reschedule' THEN '`calsync reconcile --repair` moves the appointment to Cal.com''s new time if the integrity rules accept it, else it becomes a person''s'
           WHEN 'adopt_successor' THEN '`calsync reconcile --repair` records the booking Cal.com moved it to'
           ELSE 'a person decides: ' || CASE o.kind
               WHEN 'orphan_at_calcom' THEN 'enter the booking in the salon app, or cancel it at Cal.com'
               WHEN 'orphan_here' THEN 'cancel the appointment in the salon app, or requeue it to book it again'
               ELSE 'move the appointment in the salon app, or requeue it to move the booking back' END
       END AS recommended_action,
       o.found_at, o.last_seen_at, o.found_by, o.last_seen_by
FROM calsync.reconcile_findings o
WHERE o.resolved_at IS NULL;
COMMENT ON VIEW remediation.reconcile_findings IS
    'Open findings of `calsync reconcile`: bookings at Cal.com no live appointment holds (orphan_at_calcom), our bookings Cal.com lost or cancelled (orphan_here), and drift of time or length (drift), with the repair and what to do.';
COMMENT ON COLUMN remediation.reconcile_findings.finding_id IS 'the finding (calsync.reconcile_findings.id)';
COMMENT ON COLUMN remediation.reconcile_findings.kind IS 'orphan_at_calcom, orphan_here or drift';
COMMENT ON COLUMN remediation.reconcile_findings.repair IS 'cancel_at_calcom, requeue, apply_reschedule, adopt_successor (done by --repair) or person';
COMMENT ON COLUMN remediation.reconcile_findings.uid IS 'the Cal.com booking: the orphan at Cal.com, or ours';
COMMENT ON COLUMN remediation.reconcile_findings.appointment_id IS 'our appointment (for an orphan at Cal.com: the one its metadata names, if it exists)';
COMMENT ON COLUMN remediation.reconcile_findings.slot IS '0: the appointment''s own booking; else the phase id';
COMMENT ON COLUMN remediation.reconcile_findings.calcom_start IS 'the live booking''s start at Cal.com (the successor''s for an outside reschedule)';
COMMENT ON COLUMN remediation.reconcile_findings.calcom_end IS 'its end at Cal.com';
COMMENT ON COLUMN remediation.reconcile_findings.our_start IS 'the start here (appointment or phase)';
COMMENT ON COLUMN remediation.reconcile_findings.our_end IS 'the end here';
COMMENT ON COLUMN remediation.reconcile_findings.successor_uid IS 'for an outside reschedule: the booking Cal.com moved ours to';
COMMENT ON COLUMN remediation.reconcile_findings.detail IS 'what was found, in words (ids, uids and times only)';
COMMENT ON COLUMN remediation.reconcile_findings.recommended_action IS 'what to do';
COMMENT ON COLUMN remediation.reconcile_findings.found_at IS 'when a reconciliation found it first';
COMMENT ON COLUMN remediation.reconcile_findings.last_seen_at IS 'when a reconciliation found it last';
COMMENT ON COLUMN remediation.reconcile_findings.found_by IS 'the reconcile run that found it first';
COMMENT ON COLUMN remediation.reconcile_findings.last_seen_by IS 'the reconcile run that found it last';

-- name: grants
REVOKE ALL ON FUNCTION remediation.reconcile_event_types(), remediation.reconcile_ours(timestamptz, timestamptz),
    remediation.reconcile_interval(timestamptz, timestamptz),
    remediation.reconcile_compare(calsync.calcom_booking[], timestamptz, timestamptz),
    remediation.reconcile_bookings(uuid, jsonb, timestamptz, timestamptz, boolean, timestamptz),
    remediation.reconcile_set_phase_booking(uuid, text, bigint, text, bigint, text),
    remediation.repair_reconcile_findings(boolean, text, uuid, integer, timestamptz),
    remediation.reconcile_cancellations(integer),
    remediation.record_reconcile_cancellation(uuid, bigint, text, boolean, integer, text, timestamptz),
    remediation.undo_reconcile(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remediation.reconcile_event_types(), remediation.reconcile_ours(timestamptz, timestamptz),
    remediation.reconcile_interval(timestamptz, timestamptz),
    remediation.reconcile_compare(calsync.calcom_booking[], timestamptz, timestamptz),
    remediation.reconcile_bookings(uuid, jsonb, timestamptz, timestamptz, boolean, timestamptz),
    remediation.reconcile_set_phase_booking(uuid, text, bigint, text, bigint, text),
    remediation.repair_reconcile_findings(boolean, text, uuid, integer, timestamptz),
    remediation.reconcile_cancellations(integer),
    remediation.record_reconcile_cancellation(uuid, bigint, text, boolean, integer, text, timestamptz),
    remediation.undo_reconcile(uuid, text) TO calsync_remediator;
GRANT SELECT ON remediation.reconcile_findings TO calsync_readonly;

-- name: undo
-- from: sql/functions/remediation/undo.sql
-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Revert a run: every logged change, newest first. Updated columns get their before values back; rows a
-- step inserted (derived phases, integrity issues, outbox events not yet delivered) are removed again,
-- which restores the state before the run exactly. The undo is itself a logged run; returns its changes. A
-- change it does not know how to revert stops it (it is never marked undone unreverted).
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
        ELSE
            -- never marked undone without being reverted: the whole undo stops, nothing of it is kept
            RAISE EXCEPTION 'remediation.undo: run % logged a change it cannot revert (% of % row %)',
                p_run_id, l.action, l.table_name, l.row_id USING ERRCODE = 'P0001',
                HINT = 'A reconcile repair run is undone with remediation.undo_reconcile(run_id) (calsync remediate --undo).';
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.undo(uuid, text) IS
    'Revert a runbook run from its log (newest change first); the undo is itself logged as a run.';

-- name: previous_undo
-- remediation.undo as revision 0005 froze it.
-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

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

-- name: drop
DROP VIEW remediation.reconcile_findings;
DROP FUNCTION remediation.undo_reconcile(uuid, text);
DROP FUNCTION remediation.record_reconcile_cancellation(uuid, bigint, text, boolean, integer, text, timestamptz);
DROP FUNCTION remediation.reconcile_cancellations(integer);
DROP FUNCTION remediation.repair_reconcile_findings(boolean, text, uuid, integer, timestamptz);
DROP FUNCTION remediation.reconcile_set_phase_booking(uuid, text, bigint, text, bigint, text);
DROP FUNCTION remediation.reconcile_bookings(uuid, jsonb, timestamptz, timestamptz, boolean, timestamptz);
DROP FUNCTION remediation.reconcile_compare(calsync.calcom_booking[], timestamptz, timestamptz);
DROP FUNCTION remediation.reconcile_interval(timestamptz, timestamptz);
DROP FUNCTION remediation.reconcile_ours(timestamptz, timestamptz);
DROP FUNCTION remediation.reconcile_event_types();
DROP TYPE calsync.reconcile_finding;
DROP TYPE calsync.calcom_booking;
DROP TABLE calsync.reconcile_findings;
