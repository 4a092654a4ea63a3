-- The webhook receiver's functions change appointments: not for PUBLIC. calsync_webhooks is the receiver's role:
-- it runs the three entry functions (SECURITY DEFINER: they store and apply deliveries as the schema's owner) and
-- reads the deliveries' outcomes for its health endpoint, nothing else (no table of the app, no stored body). The
-- remediation views follow roles.sql (readonly reads them: they hold no contact data).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_webhooks') THEN
        CREATE ROLE calsync_webhooks NOLOGIN;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz),
    calsync.receive_webhooks(jsonb, timestamptz),
    calsync.apply_webhook(bigint, timestamptz),
    calsync.decide_webhook(bigint, calsync.webhook_event, timestamptz, bigint, timestamptz), calsync.retry_parked_webhooks(timestamptz, text, integer),
    calsync.apply_calcom_cancel(calsync.webhook_event, bigint, timestamptz),
    calsync.apply_calcom_reschedule(calsync.webhook_event, bigint, timestamptz),
    calsync.list_calcom_booking(calsync.webhook_event, bigint, timestamptz),
    calsync.record_refused_calcom_change(bigint, text, text, timestamptz) FROM PUBLIC;
GRANT SELECT ON remediation.calcom_bookings_without_appointment, remediation.refused_calcom_changes TO calsync_readonly;
GRANT USAGE ON SCHEMA calsync TO calsync_webhooks;
GRANT EXECUTE ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz),
    calsync.receive_webhooks(jsonb, timestamptz), calsync.retry_parked_webhooks(timestamptz, text, integer)
    TO calsync_webhooks;
GRANT SELECT (outcome) ON calsync.webhook_deliveries TO calsync_webhooks;
GRANT SELECT ON public.alembic_version TO calsync_webhooks;  -- the head check at start (worker/ops/head.py)
