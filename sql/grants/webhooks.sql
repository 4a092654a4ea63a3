-- The webhook receiver's functions change appointments: not for PUBLIC. The receiver connects as a role that owns
-- or may write the app's tables (the owner by default); the remediation views follow roles.sql (readonly reads them:
-- they hold no contact data).
REVOKE EXECUTE ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz),
    calsync.receive_webhooks(jsonb, timestamptz),
    calsync.apply_webhook(bigint, timestamptz),
    calsync.decide_webhook(bigint, calsync.webhook_event, timestamptz, bigint, timestamptz), calsync.retry_parked_webhooks(timestamptz, text, integer),
    calsync.apply_calcom_cancel(calsync.webhook_event, bigint, timestamptz),
    calsync.apply_calcom_reschedule(calsync.webhook_event, bigint, timestamptz),
    calsync.list_calcom_booking(calsync.webhook_event, bigint, timestamptz),
    calsync.record_refused_calcom_change(bigint, text, text, timestamptz) FROM PUBLIC;
GRANT SELECT ON remediation.calcom_bookings_without_appointment, remediation.refused_calcom_changes TO calsync_readonly;
