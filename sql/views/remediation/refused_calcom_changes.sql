-- Changes Cal.com sent (webhooks) that were not applied: lost to a newer app change (conflict), refused by a rule
-- (refused), or never matched to a booking we know (unmatched); also those still waiting (parked). Each conflict
-- and refusal is an open calsync.integrity_issues row of its appointment, flagged for manual review.
CREATE OR REPLACE VIEW remediation.refused_calcom_changes AS
SELECT d.id AS delivery_id, d.received_at, d.trigger_event, d.booking_uid, (d.event).reschedule_uid AS reschedule_uid,
       (d.event).start_time AS calcom_start_time, d.appointment_id, d.outcome, d.detail, d.attempts,
       d.next_attempt_at,
       CASE d.outcome
           WHEN 'conflict' THEN 'The app''s change was kept and goes to Cal.com: tell the customer, or apply Cal.com''s change in the app'
           WHEN 'refused' THEN 'Move or cancel the appointment in the app to what the customer wants (the rule in the detail refused Cal.com''s change), then resolve the issue'
           WHEN 'unmatched' THEN 'Look the booking up at Cal.com: reconcile it with the appointment, or cancel it there'
           ELSE 'Nothing yet: it is retried by itself (calsync.retry_parked_webhooks)'
       END AS recommended_action
FROM calsync.webhook_deliveries d
WHERE d.outcome IN ('conflict', 'refused', 'unmatched', 'parked');
COMMENT ON VIEW remediation.refused_calcom_changes IS
    'Cal.com changes (webhook deliveries) not applied: conflict, refused, unmatched, or parked and waiting; with what to do.';
COMMENT ON COLUMN remediation.refused_calcom_changes.delivery_id IS 'the delivery (calsync.webhook_deliveries)';
COMMENT ON COLUMN remediation.refused_calcom_changes.received_at IS 'when it arrived';
COMMENT ON COLUMN remediation.refused_calcom_changes.trigger_event IS 'Cal.com''s trigger';
COMMENT ON COLUMN remediation.refused_calcom_changes.booking_uid IS 'the booking it is about (a reschedule: the new one)';
COMMENT ON COLUMN remediation.refused_calcom_changes.reschedule_uid IS 'a reschedule: the booking it moved';
COMMENT ON COLUMN remediation.refused_calcom_changes.calcom_start_time IS 'the start Cal.com has';
COMMENT ON COLUMN remediation.refused_calcom_changes.appointment_id IS 'our appointment, where known';
COMMENT ON COLUMN remediation.refused_calcom_changes.outcome IS 'conflict, refused, unmatched or parked';
COMMENT ON COLUMN remediation.refused_calcom_changes.detail IS 'what happened, in words';
COMMENT ON COLUMN remediation.refused_calcom_changes.attempts IS 'how often it was tried';
COMMENT ON COLUMN remediation.refused_calcom_changes.next_attempt_at IS 'parked: when it is tried again';
COMMENT ON COLUMN remediation.refused_calcom_changes.recommended_action IS 'what to do';
