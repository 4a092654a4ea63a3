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
