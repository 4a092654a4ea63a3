-- Queries of the outbox worker (worker/sync/drain.py). State changes are calsync functions; these call them.

-- name: claim
SELECT outbox_id::text, appointment_id, event_type, attempts, covers_seq
FROM calsync.claim_sync_events(%(worker)s, %(limit)s, make_interval(secs => %(lease_s)s));

-- name: finish
SELECT lost_outbox_id::text
FROM calsync.finish_sync_events(%(worker)s, %(results)s::jsonb, %(max_attempts)s, now(),
                                make_interval(secs => %(retry_base_s)s), make_interval(secs => %(retry_cap_s)s));

-- name: release
SELECT calsync.release_sync_events(%(worker)s, %(ids)s::uuid[]);

-- name: release_unknown
SELECT calsync.release_unknown_leases(%(worker)s, %(held)s::uuid[]);

-- name: renew
SELECT calsync.renew_leases(%(worker)s, %(ids)s::uuid[], make_interval(secs => %(lease_s)s));

-- name: reap
SELECT calsync.reap_expired_leases(now(), make_interval(secs => %(dead_after_s)s));

-- name: prune
SELECT calsync.prune_sync_history();

-- name: listener_register
INSERT INTO calsync.outbox_listeners (worker_id, idle, heartbeat_at) VALUES (%(worker)s, false, now())
ON CONFLICT (worker_id) DO UPDATE SET idle = false, heartbeat_at = now();

-- name: listener_idle
UPDATE calsync.outbox_listeners SET idle = %(idle)s, heartbeat_at = now() WHERE worker_id = %(worker)s;

-- name: listener_remove
DELETE FROM calsync.outbox_listeners WHERE worker_id = %(worker)s;

-- name: queue_stats
SELECT count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead') AS depth,
       count(*) FILTER (WHERE d.status = 'dead') AS dead,
       coalesce(extract(epoch FROM now() - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead')), 0)
           AS oldest_pending_s
FROM calsync.outbox o LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id;

-- name: sync_state
-- Everything the worker needs to sync these appointments, as one JSON document each. An appointment
-- that no longer exists comes back with status 'deleted' and what Cal.com still has for it.
SELECT x.id, CASE WHEN a.id IS NULL THEN jsonb_build_object(
    'id', x.id, 'status', 'cancelled',
    'synced', coalesce((SELECT jsonb_agg(to_jsonb(b)) FROM calsync.synced_bookings b WHERE b.appointment_id = x.id), '[]'))
ELSE jsonb_build_object(
    'id', a.id, 'status', a.status, 'starts_at', a.starts_at, 'ends_at', a.ends_at, 'is_composite', a.is_composite,
    'booking_timezone', a.booking_timezone, 'staff_id', a.staff_id, 'calcom_v2_booking_uid', a.calcom_v2_booking_uid,
    'calcom_sync_status', a.calcom_sync_status,
    -- the times the appointment had in its undelivered events (where an earlier attempt may have booked it)
    'event_times', (SELECT jsonb_agg(DISTINCT o.payload->>'starts_at') FROM calsync.outbox o
                    WHERE o.aggregateid = a.id::text AND o.payload ? 'starts_at'),
    -- a host conflict listed as a known issue (grandfathered by the rules' pre-flight, or flagged by the
    -- runbook) that still exists: not synced until the business reschedules one of the bookings
    'host_conflict', CASE WHEN EXISTS (
        SELECT 1 FROM calsync.integrity_issues i
        WHERE i.rule = 'host_busy_time_no_overlap' AND i.table_name = 'appointments' AND i.row_id = a.id
          AND i.resolved_at IS NULL)
        THEN (SELECT h.other_id FROM remediation.host_conflicts_of(a.id) AS h LIMIT 1) END,
    'customer', jsonb_build_object(
        'id', c.id, 'name', c.name, 'email', c.email, 'phone', c.phone, 'email_is_placeholder', c.email_is_placeholder,
        'usable_email', calsync.is_usable_email(c.email), 'usable_phone', calsync.is_usable_phone(c.phone)),
    'service', CASE WHEN s.id IS NOT NULL THEN jsonb_build_object(
        'id', s.id, 'name', s.name, 'event_type_id', s.calcom_event_type_id) END,
    'phases', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'id', p.id, 'sequence_order', p.sequence_order, 'segment_key', p.segment_key,
            'segment_name', p.segment_name, 'staff_required', p.staff_required, 'start_time', p.start_time,
            'end_time', p.end_time, 'calcom_booking_uid', p.calcom_booking_uid, 'calcom_booking_id', p.calcom_booking_id,
            'calcom_sync_status', p.calcom_sync_status) ORDER BY p.sequence_order)
        FROM appointment_phases p WHERE p.appointment_id = a.id), '[]'),
    'event_map', (
        SELECT jsonb_object_agg(m.segment_key, coalesce(m.child_event_type_id, m.event_type_id))
        FROM calcom_event_map m WHERE m.service_id = a.service_id AND m.staff_id = a.staff_id),
    'synced', coalesce((SELECT jsonb_agg(to_jsonb(b)) FROM calsync.synced_bookings b WHERE b.appointment_id = a.id), '[]'),
    'superseded', coalesce((
        SELECT jsonb_agg(jsonb_build_object('id', sp.id, 'phase_id', sp.phase_id, 'uid', sp.calcom_booking_uid))
        FROM calsync.superseded_phases sp
        WHERE sp.appointment_id = a.id AND sp.calcom_booking_uid IS NOT NULL AND sp.calcom_cancelled_at IS NULL), '[]'),
    'composite_problem', (
        SELECT i.detail FROM calsync.integrity_issues i
        WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
          AND i.resolved_at IS NULL LIMIT 1),
    'composite_flagged', EXISTS (
        SELECT 1 FROM calsync.integrity_issues i
        WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
          AND i.resolved_at IS NULL))
END AS state
FROM unnest(%(ids)s::bigint[]) AS x(id)
LEFT JOIN appointments a ON a.id = x.id
LEFT JOIN customers c ON c.id = a.customer_id
LEFT JOIN services s ON s.id = a.service_id;
