CREATE OR REPLACE VIEW remediation.past_unsynced AS
SELECT a.id AS appointment_id, a.customer_id, a.starts_at, a.ends_at, a.status, a.calcom_sync_status,
       a.sync_error_message AS last_error
FROM appointments a
WHERE a.calcom_sync_status IN ('failed', 'pending') AND a.status NOT IN ('cancelled', 'no_show')
  AND a.ends_at < now() AND a.calcom_v2_booking_uid IS NULL AND a.calcom_booking_id IS NULL;
COMMENT ON VIEW remediation.past_unsynced IS
    'Live appointments that are over but never reached Cal.com (Cal.com refuses bookings in the past): cancel them or keep them as history.';
COMMENT ON COLUMN remediation.past_unsynced.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.past_unsynced.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.past_unsynced.starts_at IS 'its start (in the past)';
COMMENT ON COLUMN remediation.past_unsynced.ends_at IS 'its end (in the past)';
COMMENT ON COLUMN remediation.past_unsynced.status IS 'its status';
COMMENT ON COLUMN remediation.past_unsynced.calcom_sync_status IS 'failed or pending: it never synced';
COMMENT ON COLUMN remediation.past_unsynced.last_error IS 'the last sync error';
