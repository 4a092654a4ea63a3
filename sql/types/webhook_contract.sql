-- The typed record the webhook receiver passes to the database (worker/webhooks/contract.py WebhookEvent is the
-- Python twin, field for field; tests/test_contract.py compares them). Created by revision 0021; a change is a new
-- revision (ALTER TYPE … ADD ATTRIBUTE appends). What the receiver read out of one authentic Cal.com delivery:
-- the envelope's trigger and createdAt, and the payload's booking fields (texts cut, numbers in range, times
-- parsed); NULL where the payload has no usable value.
CREATE TYPE calsync.webhook_event AS (
    company_id bigint, trigger_event text, event_key text, created_at timestamptz, uid text, reschedule_uid text,
    booking_id bigint, event_type_id bigint, start_time timestamptz, end_time timestamptz, status text,
    appointment_id bigint, phase_id bigint, cancellation_reason text, cancelled_by text, rescheduled_by text,
    title text);
