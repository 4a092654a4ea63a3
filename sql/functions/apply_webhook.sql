-- Apply one stored delivery (calsync.webhook_deliveries, outcome received or parked) and record its outcome.
-- BOOKING_CREATED: ours (its metadata names an appointment of ours, or an appointment has its uid) is
-- already_applied (the worker records its own bookings); any other booking is listed, not imported.
-- BOOKING_CANCELLED / BOOKING_RESCHEDULED: calsync.apply_calcom_cancel / apply_calcom_reschedule. Any other
-- trigger is stored and changes nothing (ignored). A parked delivery is tried again at next_attempt_at (backoff from
-- settings webhook_park_base doubling to webhook_park_cap) or as soon as the booking it waits for is known; after
-- webhook_park_max it is unmatched (kept, shown in remediation.refused_calcom_changes). Whatever this delivery
-- settled, the deliveries parked waiting for its booking are tried next (so a chain applies in order).
CREATE OR REPLACE FUNCTION calsync.apply_webhook(p_id bigint, p_now timestamptz DEFAULT now(),
                                                OUT outcome text, OUT detail text, OUT appointment_id bigint)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_d calsync.webhook_deliveries;
    v_e calsync.webhook_event;
    v_waiting text;
    v_next timestamptz;
BEGIN
    SELECT * INTO v_d FROM calsync.webhook_deliveries d WHERE d.id = p_id FOR UPDATE;
    IF NOT FOUND OR v_d.outcome NOT IN ('received', 'parked') THEN
        outcome := v_d.outcome; detail := v_d.detail; appointment_id := v_d.appointment_id;
        RETURN;
    END IF;
    v_e := v_d.event;
    IF v_e.trigger_event = 'BOOKING_CREATED' THEN
        SELECT a.id INTO appointment_id FROM appointments a WHERE a.id = v_e.appointment_id;
        IF appointment_id IS NULL THEN
            SELECT o.appointment_id INTO appointment_id FROM calsync.calcom_booking_owner(v_e.uid) o;
        END IF;
        IF appointment_id IS NOT NULL THEN
            outcome := 'already_applied';
            detail := format('booking %s is appointment %s''s own (the worker records it)', v_e.uid, appointment_id);
        ELSIF v_e.uid IS NULL THEN
            outcome := 'ignored'; detail := 'the payload names no booking uid';
        ELSE
            PERFORM calsync.list_calcom_booking(v_e, p_id, p_now);
            outcome := 'listed'; detail := format('Cal.com booking %s has no appointment: listed, not imported', v_e.uid);
        END IF;
    ELSIF v_e.trigger_event = 'BOOKING_CANCELLED' THEN
        SELECT r.outcome, r.detail, r.appointment_id, r.waiting_for INTO outcome, detail, appointment_id, v_waiting
        FROM calsync.apply_calcom_cancel(v_e, p_id, p_now) r;
    ELSIF v_e.trigger_event = 'BOOKING_RESCHEDULED' THEN
        SELECT r.outcome, r.detail, r.appointment_id, r.waiting_for INTO outcome, detail, appointment_id, v_waiting
        FROM calsync.apply_calcom_reschedule(v_e, p_id, p_now) r;
    ELSE
        outcome := 'ignored'; detail := format('trigger %s changes nothing here', v_e.trigger_event);
    END IF;
    IF outcome = 'parked' THEN
        IF v_d.received_at < p_now - calsync.webhook_setting('webhook_park_max') THEN
            outcome := 'unmatched';
            detail := format('%s; gave up after %s attempts', detail, v_d.attempts);
            IF v_e.trigger_event = 'BOOKING_RESCHEDULED' AND appointment_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM appointments a WHERE a.id = appointment_id) THEN
                PERFORM calsync.record_refused_calcom_change(appointment_id, 'calcom_change_matches_a_known_booking',
                    format('Cal.com moved a booking of appointment %s to %s (new booking %s, webhook delivery %s), but the booking it moved (%s) is not the appointment''s',
                           appointment_id, v_e.start_time, v_e.uid, p_id, v_e.reschedule_uid), p_now);
            ELSIF v_e.trigger_event = 'BOOKING_RESCHEDULED' THEN
                appointment_id := NULL;
                PERFORM calsync.list_calcom_booking((v_e.company_id, 'BOOKING_CREATED', v_e.event_key, v_e.created_at,
                    v_e.uid, NULL, v_e.booking_id, v_e.event_type_id, v_e.start_time, v_e.end_time, v_e.status, NULL,
                    NULL, NULL, NULL, NULL, v_e.title)::calsync.webhook_event, p_id, p_now);
            END IF;
        ELSE
            v_next := p_now + least(calsync.webhook_setting('webhook_park_base') * (2 ^ least(v_d.attempts - 1, 20)),
                                    calsync.webhook_setting('webhook_park_cap'));
        END IF;
    END IF;
    UPDATE calsync.webhook_deliveries d
    SET outcome = apply_webhook.outcome, detail = apply_webhook.detail,
        appointment_id = apply_webhook.appointment_id,
        waiting_for = CASE WHEN apply_webhook.outcome = 'parked' THEN v_waiting END,
        attempts = d.attempts + CASE WHEN v_d.outcome = 'parked' THEN 1 ELSE 0 END,
        next_attempt_at = v_next,
        decided_at = CASE WHEN apply_webhook.outcome <> 'parked' THEN p_now END
    WHERE d.id = p_id;
    IF outcome <> 'parked' AND v_e.uid IS NOT NULL THEN
        PERFORM calsync.retry_parked_webhooks(p_now, v_e.uid);
    END IF;
END
$$;
COMMENT ON FUNCTION calsync.apply_webhook(bigint, timestamptz) IS
    'Apply one stored Cal.com delivery (received or parked) by its trigger and record the outcome; then retry the deliveries waiting for its booking.';
