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
