-- Frozen SQL of revision 0028 (never edit; sql/ holds the current definitions).

-- name: functions
-- from: sql/functions/record_refused_calcom_change.sql
-- from: sql/functions/decide_webhook.sql
-- A change from Cal.com that was not applied is kept for a person: an open integrity issue of the appointment
-- (rule names why: calcom_change_keeps_the_rules, calcom_change_loses_to_newer_app_change,
-- calcom_change_matches_a_known_booking), and the appointment flagged for manual review. The detail names the
-- delivery (calsync.webhook_deliveries) and never a person's contact. Returns the issue's id.
-- One open issue per rule and appointment (integrity_issues_one_open_per_rule_and_row): a second refused change
-- of the same kind (the customer moved the booking twice while the app's change was on its way) joins the open
-- issue, its detail added after the first ones (kept to their first 4,000 characters, so the
-- issue stays readable; every delivery keeps its own detail in calsync.webhook_deliveries). Before revision 0028
-- the second one broke the unique index and its delivery was not stored (the receiver answered 500).
CREATE OR REPLACE FUNCTION calsync.record_refused_calcom_change(p_appointment_id bigint, p_rule text, p_detail text,
                                                               p_now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO calsync.integrity_issues AS i (rule, table_name, row_id, detail, found_by, found_at)
    VALUES (p_rule, 'appointments', p_appointment_id, p_detail, 'calsync.receive_webhook', p_now)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL
    DO UPDATE SET detail = left(i.detail, 4000) || E'\nthen: ' || excluded.detail
    RETURNING i.id INTO v_id;
    UPDATE appointments
    SET requires_manual_review = true, manual_review_flagged_at = coalesce(manual_review_flagged_at, p_now)
    WHERE id = p_appointment_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.record_refused_calcom_change(bigint, text, text, timestamptz) IS
    'Keep a Cal.com change that was not applied: an open integrity issue of the appointment (a second one of the same rule joins it), flagged for manual review.';

-- The outcome of one delivery, with its effects on the app's tables (the delivery row itself is written by the
-- caller: calsync.receive_webhook inserts it once, with this outcome; calsync.apply_webhook updates a parked one).
-- BOOKING_CREATED: ours (its metadata names an appointment of ours, or an appointment has its uid) is
-- already_applied (the worker records its own bookings); any other booking is listed, not imported.
-- BOOKING_CANCELLED / BOOKING_RESCHEDULED: calsync.apply_calcom_cancel / apply_calcom_reschedule. Any other
-- trigger changes nothing (ignored). A parked delivery gets its next attempt (backoff from settings
-- webhook_park_base doubling to webhook_park_cap, p_attempts so far); one received longer than webhook_park_max ago
-- is unmatched instead (a reschedule that names our appointment is recorded on it; one that names none is listed).
-- An error nobody expected (a rule the apply functions do not catch, a bug) never loses the delivery: its effects
-- are rolled back (the block's subtransaction), it is parked with the error in its detail and tried again like
-- any parked delivery; one that still fails after webhook_park_max is refused, recorded on its appointment when
-- it names one (before revision 0028 the error rolled back the whole call: the receiver answered 500 and stored
-- nothing, and one such delivery in the timer's batch failed the batch every time).
CREATE OR REPLACE FUNCTION calsync.decide_webhook(p_id bigint, p_event calsync.webhook_event, p_received_at timestamptz,
                                                 p_attempts bigint, p_now timestamptz DEFAULT now(),
                                                 OUT outcome text, OUT detail text, OUT appointment_id bigint,
                                                 OUT waiting_for text, OUT next_attempt_at timestamptz)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_e calsync.webhook_event := p_event;
    v_failed boolean := false;
    v_state text;
    v_rule text;
    v_msg text;
BEGIN
    BEGIN
        IF v_e.trigger_event = 'BOOKING_CREATED' THEN
            -- only with an id: a probe of NULL is planned as nothing to read, so the generic plan looked dearer than
            -- the custom ones and this was planned again on every call (35 µs a delivery in the webhook bench)
            IF v_e.appointment_id IS NOT NULL THEN
                SELECT a.id INTO appointment_id FROM appointments a WHERE a.id = v_e.appointment_id;
            END IF;
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
    EXCEPTION WHEN OTHERS THEN  -- not a cancelled query (statement_timeout) or a lost connection: those stay errors
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_rule = CONSTRAINT_NAME, v_msg = MESSAGE_TEXT;
        v_failed := true; outcome := 'parked'; waiting_for := NULL;
        IF appointment_id IS NULL THEN  -- the booking's appointment, as far as we know it: the one the change was for
            SELECT o.appointment_id INTO appointment_id
            FROM calsync.calcom_booking_owner(coalesce(v_e.reschedule_uid, v_e.uid)) o;
        END IF;
        appointment_id := coalesce(appointment_id, v_e.appointment_id);
        detail := format('applying it failed (SQLSTATE %s%s): %s', v_state,
                         CASE WHEN v_rule <> '' THEN ', rule ' || v_rule ELSE '' END, left(v_msg, 1000));
    END;
    IF outcome <> 'parked' THEN
        waiting_for := NULL;
        RETURN;
    END IF;
    IF p_received_at >= p_now - calsync.webhook_setting('webhook_park_max') THEN
        next_attempt_at := p_now + least(calsync.webhook_setting('webhook_park_base') * (2 ^ least(p_attempts - 1, 20)),
                                         calsync.webhook_setting('webhook_park_cap'));
        RETURN;
    END IF;
    IF v_failed THEN
        outcome := 'refused';
        detail := format('%s; gave up after %s attempts', detail, p_attempts);
        IF EXISTS (SELECT 1 FROM appointments a WHERE a.id = decide_webhook.appointment_id) THEN
            PERFORM calsync.record_refused_calcom_change(appointment_id, 'calcom_change_keeps_the_rules',
                format('Cal.com''s %s of booking %s (webhook delivery %s) could not be applied to appointment %s: %s',
                       v_e.trigger_event, v_e.uid, p_id, appointment_id, detail), p_now);
        ELSE
            appointment_id := NULL;
        END IF;
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

-- name: previous_functions
-- revision 0021's calsync.record_refused_calcom_change
-- A change from Cal.com that was not applied is kept for a person: an open integrity issue of the appointment
-- (rule names why: calcom_change_keeps_the_rules, calcom_change_loses_to_newer_app_change,
-- calcom_change_matches_a_known_booking), and the appointment flagged for manual review. The detail names the
-- delivery (calsync.webhook_deliveries) and never a person's contact. Returns the issue's id.
CREATE OR REPLACE FUNCTION calsync.record_refused_calcom_change(p_appointment_id bigint, p_rule text, p_detail text,
                                                               p_now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by, found_at)
    VALUES (p_rule, 'appointments', p_appointment_id, p_detail, 'calsync.receive_webhook', p_now)
    RETURNING id INTO v_id;
    UPDATE appointments
    SET requires_manual_review = true, manual_review_flagged_at = coalesce(manual_review_flagged_at, p_now)
    WHERE id = p_appointment_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.record_refused_calcom_change(bigint, text, text, timestamptz) IS
    'Keep a Cal.com change that was not applied: an open integrity issue of the appointment, flagged for manual review.';

-- revision 0021's calsync.decide_webhook
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
