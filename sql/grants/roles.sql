-- The three roles and what each may do. Roles are cluster-wide: created only if missing. Applying this file
-- brings any earlier revision's grants to these: what a role must no longer have is revoked here too.
--  calsync_readonly   SELECT on the remediation views, nothing else (the views' helper functions are
--                     SECURITY DEFINER, so no table grant is needed). Where a view shows a person's name or
--                     an error text (which may echo the attendee's name, e-mail or phone), it gets the other
--                     columns only; remediation.failed_syncs is read through a function and so stays whole.
--  calsync_worker     exactly what `calsync worker` needs: read what it syncs, and run the delivery and
--                     listener functions (SECURITY DEFINER), which hold it to its own registered id
--                     (calsync.authenticate_worker), the database's time, a bounded lease and retention floors
--                     (calsync.enforce_worker_limits). It can read no other worker's id or secret: the delivery
--                     and listener tables are not granted; the queue's depth comes from calsync.queue_stats().
--  calsync_remediator the runbook functions (SECURITY DEFINER) and the views in full.
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
REVOKE SELECT ON remediation.log, remediation.runs, remediation.categories, remediation.failure_diagnoses,
    remediation.customers_missing_contact, remediation.past_unsynced, remediation.stuck_outbox,
    remediation.dead_letters FROM calsync_readonly;
GRANT SELECT ON remediation.categories TO calsync_readonly;
-- without the customer's name (the id finds the customer; the e-mail and phone shown are unusable by definition)
GRANT SELECT (customer_id, email, phone, source, upcoming_appointments) ON remediation.customers_missing_contact
    TO calsync_readonly;
-- without the error texts (Cal.com's answers may echo the attendee): the category and action are the triage
GRANT SELECT (appointment_id, customer_id, starts_at, ends_at, status, calcom_sync_status) ON remediation.past_unsynced
    TO calsync_readonly;
GRANT SELECT (outbox_id, appointment_id, type, created_at, age, status, attempts, next_attempt_at, locked_by,
              locked_until, last_category) ON remediation.stuck_outbox TO calsync_readonly;
GRANT SELECT (outbox_id, appointment_id, type, attempts, last_category, created_at, died_at, recommended_action)
    ON remediation.dead_letters TO calsync_readonly;
GRANT calsync_readonly TO calsync_remediator;
GRANT SELECT ON remediation.customers_missing_contact, remediation.past_unsynced, remediation.stuck_outbox,
    remediation.dead_letters TO calsync_remediator;
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
-- it reads what it syncs (sync_state) and the revision it runs against (it refuses to start on another);
-- every change goes through the delivery functions, which are SECURITY DEFINER: it cannot change an
-- appointment itself
GRANT SELECT ON appointments, appointment_phases, customers, services, staff, calcom_event_map, alembic_version
    TO calsync_worker;
GRANT SELECT ON calsync.outbox, calsync.synced_bookings, calsync.superseded_phases, calsync.integrity_issues
    TO calsync_worker;
-- locked_by and worker_id name the other workers, token_hash is their secret's hash: through functions only
REVOKE ALL ON calsync.outbox_delivery, calsync.outbox_listeners FROM calsync_worker;
GRANT EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz),
    calsync.register_listener(text, timestamptz), calsync.heartbeat_listener(text, boolean, timestamptz),
    calsync.remove_listener(text), calsync.queue_stats(timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz),
    calsync.register_listener(text, timestamptz), calsync.heartbeat_listener(text, boolean, timestamptz),
    calsync.remove_listener(text), calsync.queue_stats(timestamptz),
    calsync.caller_is_admin(), calsync.worker_limit(text), calsync.authenticate_worker(text, text),
    calsync.enforce_worker_limits(text, timestamptz, interval, interval, interval, interval) FROM PUBLIC;
-- a refused key is reported and cleared by the worker (revision 0017); the table itself is the owner's
GRANT EXECUTE ON FUNCTION calsync.report_key_problem(text, text, text, text, timestamptz),
    calsync.clear_key_problem(text, text, timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.report_key_problem(text, text, text, text, timestamptz),
    calsync.clear_key_problem(text, text, timestamptz) FROM PUBLIC;
-- contacts (revision 0015): the worker reads the salon's settings and the placeholder domain with the sync state;
-- readonly sees customers_with_invalid_contact without the stored value (a mistyped e-mail or phone is still
-- the customer's), the remediator in full; findings are recorded through calsync.finish_sync_events only
GRANT SELECT ON calsync.company_settings, calsync.settings TO calsync_worker;
REVOKE SELECT ON remediation.customers_with_invalid_contact FROM calsync_readonly;
GRANT SELECT (customer_id, company_id, field, reason, found_by, found_at, appointments, next_starts_at,
              recommended_action) ON remediation.customers_with_invalid_contact TO calsync_readonly;
GRANT SELECT ON remediation.customers_with_invalid_contact TO calsync_remediator;
REVOKE EXECUTE ON FUNCTION calsync.record_contact_finding(bigint, text, text, text, timestamptz),
    calsync.resolve_contact_finding(bigint, text, timestamptz) FROM PUBLIC;
