-- The transactional outbox: the intent to sync commits in the same transaction as the booking.
-- Appointment changes insert rows into calsync.outbox (insert-only, shaped for Debezium's outbox event
-- router); the worker delivers them (calsync.claim_sync_events / calsync.finish_sync_events). The appointments'
-- own trigger (their every booking and move) inserts the same row itself, a function call less.

-- PL/pgSQL, not SQL: a SQL function that can't be inlined (an INSERT) is planned again on every call from
-- a trigger; PL/pgSQL keeps the plan for the session (the app's every booking calls this).
CREATE OR REPLACE FUNCTION calsync.enqueue_sync(p_appointment_id bigint, p_type text, p_payload jsonb)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload)
    VALUES ('appointment', p_appointment_id::text, p_type, p_payload)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.enqueue_sync(bigint, text, jsonb) IS
    'Add one event (create, cancel or reschedule) for an appointment to calsync.outbox; returns its id.';
