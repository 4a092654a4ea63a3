-- The typed contract between the worker and the database (worker/sync/contract.py has the Python twin of each
-- type, field for field; tests/test_contract.py compares them). Composite types cannot be replaced: this file is
-- the current shape for review, created by revision 0014; a change is a new revision (ALTER TYPE … ADD ATTRIBUTE,
-- which appends: new attributes come last here and in contract.py). tests/test_contract.py checks contract.py
-- against the database. Revision 0015 added sync_customer.email_accepted and placeholder_email, and
-- appointment_sync_state.phone_region and language.

-- read: calsync.appointment_sync_state(ids)
CREATE TYPE calsync.sync_customer AS (
    id bigint, name text, email text, phone text, email_is_placeholder boolean, usable_email boolean,
    usable_phone boolean, email_accepted boolean, placeholder_email text);
CREATE TYPE calsync.sync_service AS (id bigint, name text, event_type_id bigint);
CREATE TYPE calsync.sync_phase AS (
    id bigint, sequence_order bigint, segment_key text, segment_name text, staff_required boolean,
    start_time timestamptz, end_time timestamptz, calcom_booking_uid text, calcom_booking_id bigint,
    calcom_sync_status text);
CREATE TYPE calsync.sync_segment_event_type AS (segment_key text, event_type_id bigint);
CREATE TYPE calsync.sync_known_booking AS (
    slot bigint, uid text, booking_id bigint, start_at timestamptz, end_at timestamptz, event_type_id bigint);
CREATE TYPE calsync.sync_superseded_booking AS (id bigint, phase_id bigint, uid text);
CREATE TYPE calsync.appointment_sync_state AS (
    id bigint, deleted boolean, status text, starts_at timestamptz, ends_at timestamptz, is_composite boolean,
    booking_timezone text, staff_id uuid, calcom_v2_booking_uid text, calcom_sync_status text,
    event_times timestamptz[], host_conflict bigint, customer calsync.sync_customer, service calsync.sync_service,
    phases calsync.sync_phase[], event_map calsync.sync_segment_event_type[], synced calsync.sync_known_booking[],
    superseded calsync.sync_superseded_booking[], composite_problem text, composite_flagged boolean,
    phone_region text, language text);

-- report: calsync.finish_sync_events(worker, results, …)
CREATE TYPE calsync.sync_booking_fact AS (
    phase_id bigint, uid text, booking_id bigint, start_at timestamptz, end_at timestamptz, event_type_id bigint,
    cancelled boolean);
CREATE TYPE calsync.sync_exchange AS (
    phase_id bigint, action text, request_method text, request_path text, request_body jsonb,
    response_status bigint, response_headers jsonb, response_body text, response_size bigint,
    response_truncated boolean, duration_ms double precision, category text, error text, at timestamptz);
CREATE TYPE calsync.sync_failure_detail AS (
    message text, field text, http_status bigint, action text, phase_id bigint, request_id text);
CREATE TYPE calsync.sync_phone_finding AS (customer_id bigint, value text, reason text);  -- revision 0017
CREATE TYPE calsync.sync_result AS (
    event_id uuid, appointment_id bigint, category text, skipped boolean, error text,
    detail calsync.sync_failure_detail, retry_after_s double precision, bookings calsync.sync_booking_fact[],
    superseded bigint[], exchanges calsync.sync_exchange[],
    phone_findings calsync.sync_phone_finding[]);  -- revision 0017

-- internal to calsync.finish_sync_events: each event's last result, decided
CREATE TYPE calsync.sync_decision AS (
    event_id uuid, appointment_id bigint, outcome text, category text, error text, message text, detail jsonb,
    retry_after_s double precision, made_progress boolean, exchanges integer);
