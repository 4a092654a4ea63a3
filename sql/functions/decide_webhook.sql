-- The outcome of one delivery, with its effects on the app's tables (the delivery row itself is written by the
-- caller: calsync.receive_webhook inserts it once, with this outcome; calsync.apply_webhook updates a parked one).
-- BOOKING_CREATED: ours (its metadata names an appointment of ours, or an appointment has its uid) is
-- already_applied (the worker records its own bookings); any other booking is listed, not imported.
-- BOOKING_CANCELLED / BOOKING_RESCHEDULED: calsync.apply_calcom_cancel / apply_calcom_reschedule. Any other
-- trigger changes nothing (ignored). A parked delivery gets its next attempt (backoff from settings
-- webhook_park_base doubling to webhook_park_cap, p_attempts so far); one received longer than webhook_park_max ago
-- is unmatched instead (a reschedule that names our appointment is recorded on it; one that names none is listed).
CREATE OR REPLACE FUNCTION calsync.decide_webhook(p_id bigint, p_event calsync.webhook_event, p_received_at timestamptz,
                                                 p_attempts bigint, p_now timestamptz DEFAULT now(),
                                                 OUT outcome text, OUT detail text, OUT appointment_id bigint,
                                                 OUT waiting_for text, OUT next_attempt_at timestamptz)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_e calsync.webhook_event := p_event;
BEGIN
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
        SELECT r.outcome, r.detail, r.appointment_id, r.waiting_for INTO outcome, detail, appointment_id, waiting_for
        FROM calsync.apply_calcom_cancel(v_e, p_id, p_now) r;
    ELSIF v_e.trigger_event = 'BOOKING_RESCHEDULED' THEN
        SELECT r.outcome, r.detail, r.appointment_id, r.waiting_for INTO outcome, detail, appointment_id, waiting_for
        FROM calsync.apply_calcom_reschedule(v_e, p_id, p_now) r;
    ELSE
        outcome := 'ignored'; detail := format('trigger %s changes nothing here', v_e.trigger_event);
    END IF;
    IF outcome <> 'parked' THEN
        waiting_for := NULL;
        RETURN;
    END IF;
    IF p_received_at >= p_now - calsync.webhook_setting('webhook_park_max') THEN
        next_attempt_at := p_now + least(calsync.webhook_setting('webhook_park_base') * (2 ^ least(p_attempts - 1, 20)),
                                         calsync.webhook_setting('webhook_park_cap'));
        RETURN;
    END IF;
    outcome := 'unmatched'; waiting_for := NULL;
    detail := format('%s; gave up after %s attempts', detail, p_attempts);
    IF v_e.trigger_event = 'BOOKING_RESCHEDULED' AND appointment_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM appointments a WHERE a.id = decide_webhook.appointment_id) THEN
        PERFORM calsync.record_refused_calcom_change(appointment_id, 'calcom_change_matches_a_known_booking',
            format('Cal.com moved a booking of appointment %s to %s (new booking %s, webhook delivery %s), but the booking it moved (%s) is not the appointment''s',
                   appointment_id, v_e.start_time, v_e.uid, p_id, v_e.reschedule_uid), p_now);
    ELSIF v_e.trigger_event = 'BOOKING_RESCHEDULED' THEN
        appointment_id := NULL;
        PERFORM calsync.list_calcom_booking((v_e.company_id, 'BOOKING_CREATED', v_e.event_key, v_e.created_at,
            v_e.uid, NULL, v_e.booking_id, v_e.event_type_id, v_e.start_time, v_e.end_time, v_e.status, NULL,
            NULL, NULL, NULL, NULL, v_e.title)::calsync.webhook_event, p_id, p_now);
    END IF;
END
$$;
COMMENT ON FUNCTION calsync.decide_webhook(bigint, calsync.webhook_event, timestamptz, bigint, timestamptz) IS
    'The outcome of one Cal.com delivery by its trigger, with its effects on the app''s tables (not on the delivery row).';
