-- One authentic Cal.com delivery, stored and applied in one call (the receiver's one statement per delivery).
-- p_event is calsync.webhook_event as JSON (worker/webhooks/contract.py WebhookEvent); p_body the raw body and
-- p_headers the headers without secrets (the receiver strips them). Exactly once: deliveries of one event
-- (event_key: trigger and booking uid, else the body's SHA-256; see worker/webhooks/contract.py) take turns (a
-- transaction lock on the key); the first is decided (calsync.decide_webhook) and stored once with its outcome; a
-- redelivery is kept as its own row, outcome duplicate, pointing at the first, and changes nothing. Then the
-- deliveries parked waiting for its booking are tried. Returns the delivery's id, outcome, detail and appointment.
CREATE OR REPLACE FUNCTION calsync.receive_webhook(p_event jsonb, p_body text, p_headers jsonb, p_signature text,
                                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (delivery_id bigint, outcome text, detail text, appointment_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_e calsync.webhook_event := jsonb_populate_record(NULL::calsync.webhook_event, p_event);
    v_id bigint;
    v_first calsync.webhook_deliveries;
    v_outcome text;
    v_detail text;
    v_appointment bigint;
    v_waiting text;
    v_next timestamptz;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.receive_webhook: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('calsync.webhook:' || v_e.event_key, 0));
    SELECT * INTO v_first FROM calsync.webhook_deliveries d WHERE d.event_key = v_e.event_key AND d.duplicate_of IS NULL;
    v_id := nextval(pg_get_serial_sequence('calsync.webhook_deliveries', 'id'));
    IF v_first.id IS NOT NULL THEN
        v_outcome := 'duplicate';
        v_detail := format('a redelivery of delivery %s (%s): nothing changed', v_first.id, v_first.outcome);
        v_appointment := v_first.appointment_id;
    ELSE
        SELECT r.outcome, r.detail, r.appointment_id, r.waiting_for, r.next_attempt_at
        INTO v_outcome, v_detail, v_appointment, v_waiting, v_next
        FROM calsync.decide_webhook(v_id, v_e, p_now, 1, p_now) r;
    END IF;
    INSERT INTO calsync.webhook_deliveries AS d
        (id, received_at, company_id, event_key, trigger_event, booking_uid, event, body, body_size, headers,
         signature, outcome, detail, appointment_id, duplicate_of, waiting_for, next_attempt_at, decided_at)
    OVERRIDING SYSTEM VALUE
    VALUES (v_id, p_now, v_e.company_id, v_e.event_key, v_e.trigger_event, v_e.uid, v_e, p_body, octet_length(p_body),
            p_headers, p_signature, v_outcome, v_detail, v_appointment, v_first.id, v_waiting, v_next,
            CASE WHEN v_outcome <> 'parked' THEN p_now END);
    IF v_first.id IS NULL AND v_outcome <> 'parked' AND v_e.uid IS NOT NULL
       -- one index probe; the call only when something waits for this booking
       AND EXISTS (SELECT 1 FROM calsync.webhook_deliveries w WHERE w.outcome = 'parked' AND w.waiting_for = v_e.uid) THEN
        PERFORM calsync.retry_parked_webhooks(p_now, v_e.uid);
    END IF;
    RETURN QUERY SELECT v_id, v_outcome, v_detail, v_appointment;
END
$$;
COMMENT ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz) IS
    'Store one authentic Cal.com webhook delivery and apply it, exactly once per event (a redelivery is kept as a duplicate and changes nothing).';
