-- The typed contract of `calsync reconcile` (worker/ops/reconcile_contract.py has the Python twin of each type,
-- field for field; tests/test_contract.py compares them). Created by revision 0022; a change is a new revision
-- (ALTER TYPE … ADD ATTRIBUTE, which appends).

-- what Cal.com holds: one booking as listed (GET /v2/bookings) or read by uid (GET /v2/bookings/{uid}); facts only,
-- remediation.reconcile_compare decides what they mean. found = false: a uid we asked for that Cal.com does not
-- know (404). metadata_*: the raw values of our metadata keys (calsync_appointment_id, calsync_phase_id), if any.
-- cancellation_reason: Cal.com's, cut to 200 characters (whether calsync cancelled it is decided from it here).
CREATE TYPE calsync.calcom_booking AS (
    uid text, booking_id bigint, event_type_id bigint, status text, start_at timestamptz, end_at timestamptz,
    metadata_appointment text, metadata_phase text, rescheduled_to_uid text, rescheduled_from_uid text,
    cancellation_reason text, found boolean);

-- what reconciliation found: one row of calsync.reconcile_findings (id NULL in a dry run)
CREATE TYPE calsync.reconcile_finding AS (
    id bigint, kind text, uid text, booking_id bigint, appointment_id bigint, slot bigint, repair text, detail text,
    successor_uid text, successor_booking_id bigint, calcom_start timestamptz, calcom_end timestamptz,
    our_start timestamptz, our_end timestamptz, event_type_id bigint, is_new boolean);
