-- One authentic Cal.com delivery, stored and applied in one call (the receiver's one statement per delivery).
-- p_event is calsync.webhook_event as JSON (worker/webhooks/contract.py WebhookEvent); p_body the raw body and
-- p_headers the headers without secrets (the receiver strips them). Exactly once: the first delivery of an event
-- (event_key: trigger and booking uid, else the body's SHA-256; see worker/webhooks/contract.py) is applied
-- (calsync.apply_webhook); a redelivery is kept as its own row, outcome duplicate, pointing at the first, and
-- changes nothing. Returns the delivery's id, outcome, detail and appointment.
CREATE OR REPLACE FUNCTION calsync.receive_webhook(p_event jsonb, p_body text, p_headers jsonb, p_signature text,
                                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (delivery_id bigint, outcome text, detail text, appointment_id bigint)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_e calsync.webhook_event := jsonb_populate_record(NULL::calsync.webhook_event, p_event);
    v_id bigint;
    v_first calsync.webhook_deliveries;
BEGIN
    INSERT INTO calsync.webhook_deliveries AS d
        (received_at, company_id, event_key, trigger_event, booking_uid, event, body, body_size, headers, signature,
         outcome)
    VALUES (p_now, v_e.company_id, v_e.event_key, v_e.trigger_event, v_e.uid, v_e, p_body, octet_length(p_body),
            p_headers, p_signature, 'received')
    ON CONFLICT (event_key) WHERE duplicate_of IS NULL DO NOTHING
    RETURNING d.id INTO v_id;
    IF v_id IS NULL THEN
        SELECT * INTO v_first FROM calsync.webhook_deliveries d WHERE d.event_key = v_e.event_key AND d.duplicate_of IS NULL;
        INSERT INTO calsync.webhook_deliveries AS d
            (received_at, company_id, event_key, trigger_event, booking_uid, event, body, body_size, headers,
             signature, outcome, detail, appointment_id, duplicate_of, decided_at)
        VALUES (p_now, v_e.company_id, v_e.event_key, v_e.trigger_event, v_e.uid, v_e, p_body, octet_length(p_body),
                p_headers, p_signature, 'duplicate',
                format('a redelivery of delivery %s (%s): nothing changed', v_first.id, v_first.outcome),
                v_first.appointment_id, v_first.id, p_now)
        RETURNING d.id INTO v_id;
        RETURN QUERY SELECT d.id, d.outcome, d.detail, d.appointment_id FROM calsync.webhook_deliveries d WHERE d.id = v_id;
        RETURN;
    END IF;
    RETURN QUERY SELECT v_id, r.outcome, r.detail, r.appointment_id FROM calsync.apply_webhook(v_id, p_now) r;
END
$$;
COMMENT ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz) IS
    'Store one authentic Cal.com webhook delivery and apply it, exactly once per event (a redelivery is kept as a duplicate and changes nothing).';
