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
