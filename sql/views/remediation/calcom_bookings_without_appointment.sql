-- Cal.com bookings that no appointment of ours holds, as Cal.com's webhooks told of them (listed, never imported:
-- calsync.foreign_calcom_bookings). Live ones only; the title (which may name the attendee) stays in the table.
CREATE OR REPLACE VIEW remediation.calcom_bookings_without_appointment AS
SELECT b.uid, b.booking_id, b.event_type_id, b.start_time, b.end_time, b.listed_at, b.changed_at, b.delivery_id,
       'Made at Cal.com, not in the app: enter it in the app if the salon''s calendar must hold it (then cancel '
       || 'this one at Cal.com), or leave it at Cal.com only'::text AS recommended_action
FROM calsync.foreign_calcom_bookings b
WHERE b.status = 'accepted';
COMMENT ON VIEW remediation.calcom_bookings_without_appointment IS
    'Live Cal.com bookings without an appointment of ours (from BOOKING_CREATED webhooks), listed, not imported.';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.uid IS 'the booking''s Cal.com uid';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.booking_id IS 'its numeric Cal.com id';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.event_type_id IS 'its Cal.com event type';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.start_time IS 'when it starts';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.end_time IS 'when it ends';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.listed_at IS 'when the webhook listed it';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.changed_at IS 'when a webhook last changed it';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.delivery_id IS 'the last delivery about it (calsync.webhook_deliveries)';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.recommended_action IS 'what to do';
