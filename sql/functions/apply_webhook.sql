-- Apply a parked delivery (calsync.webhook_deliveries) again: calsync.decide_webhook with its attempts so far, and
-- the row updated with the outcome. Whatever it settled, the deliveries parked waiting for its booking are tried
-- next (so a chain applies in order). A delivery that is not parked is left as it is.
CREATE OR REPLACE FUNCTION calsync.apply_webhook(p_id bigint, p_now timestamptz DEFAULT now(),
                                                OUT outcome text, OUT detail text, OUT appointment_id bigint)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_d calsync.webhook_deliveries;
    v_r record;
BEGIN
    SELECT * INTO v_d FROM calsync.webhook_deliveries d WHERE d.id = p_id FOR UPDATE;
    IF NOT FOUND OR v_d.outcome <> 'parked' THEN
        outcome := v_d.outcome; detail := v_d.detail; appointment_id := v_d.appointment_id;
        RETURN;
    END IF;
    SELECT * INTO v_r FROM calsync.decide_webhook(p_id, v_d.event, v_d.received_at, v_d.attempts + 1, p_now);
    UPDATE calsync.webhook_deliveries d
    SET outcome = v_r.outcome, detail = v_r.detail, appointment_id = coalesce(v_r.appointment_id, d.appointment_id),
        waiting_for = v_r.waiting_for, attempts = d.attempts + 1, next_attempt_at = v_r.next_attempt_at,
        decided_at = CASE WHEN v_r.outcome <> 'parked' THEN p_now END
    WHERE d.id = p_id;
    outcome := v_r.outcome; detail := v_r.detail; appointment_id := coalesce(v_r.appointment_id, v_d.appointment_id);
    IF outcome <> 'parked' AND (v_d.event).uid IS NOT NULL THEN
        PERFORM calsync.retry_parked_webhooks(p_now, (v_d.event).uid);
    END IF;
END
$$;
COMMENT ON FUNCTION calsync.apply_webhook(bigint, timestamptz) IS
    'Apply a parked Cal.com delivery again and record the outcome; then retry the deliveries waiting for its booking.';
