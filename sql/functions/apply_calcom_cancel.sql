-- BOOKING_CANCELLED: Cal.com cancelled booking p_event.uid (a cancel's payload has no metadata: the uid is all
-- there is). The booking of one of our appointments: the appointment is cancelled, marked as coming from Cal.com
-- (sync_origin = 'calcom': nothing is enqueued, no echo), the reason and who cancelled kept in its metadata
-- (calcom_cancellation). A composite lives only with all its staff-required phases booked (the stated rule): a
-- cancelled phase booking cancels the whole appointment, and one cancel event is enqueued so the worker cancels
-- the other phases' bookings. Outcomes: applied, already_applied (cancelled already: also our own cancel's echo),
-- listed (a booking not ours), stale (a booking the appointment no longer has), parked (a uid not known yet, or
-- the worker holds the appointment), conflict (an undelivered app change is newer, or the version check refused
-- it), refused (a rule refused it). Conflicts and refusals are recorded (calsync.record_refused_calcom_change).
CREATE OR REPLACE FUNCTION calsync.apply_calcom_cancel(p_event calsync.webhook_event, p_delivery_id bigint,
                                                      p_now timestamptz DEFAULT now(),
                                                      OUT outcome text, OUT detail text, OUT appointment_id bigint,
                                                      OUT waiting_for text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_writer text := current_setting('calsync.writer', true);
    v_owner record;
    v_a record;
    v_blocker text;
    v_rule text;
    v_msg text;
BEGIN
    IF p_event.uid IS NULL THEN
        outcome := 'ignored'; detail := 'the payload names no booking uid';
        RETURN;
    END IF;
    SELECT * INTO v_owner FROM calsync.calcom_booking_owner(p_event.uid);
    IF v_owner.appointment_id IS NULL THEN
        IF calsync.list_calcom_booking(p_event, p_delivery_id, p_now) THEN
            outcome := 'listed'; detail := format('listed Cal.com booking %s (no appointment) cancelled', p_event.uid);
        ELSIF EXISTS (SELECT 1 FROM calsync.superseded_phases s WHERE s.calcom_booking_uid = p_event.uid) THEN
            outcome := 'stale'; detail := format('booking %s belonged to a superseded phase: nothing to change', p_event.uid);
        ELSE
            outcome := 'parked'; waiting_for := p_event.uid;
            detail := format('no appointment has booking %s yet (its create or reschedule has not arrived or been recorded)',
                             p_event.uid);
        END IF;
        RETURN;
    END IF;
    appointment_id := v_owner.appointment_id;
    SELECT a.id, a.status, a.version, a.is_composite INTO v_a FROM appointments a WHERE a.id = v_owner.appointment_id;
    IF v_a.status = 'cancelled' THEN
        outcome := 'already_applied'; detail := format('appointment %s is cancelled already', v_a.id);
        RETURN;
    END IF;
    v_blocker := calsync.calcom_change_blocker(v_a.id);
    IF v_blocker = 'in_flight' THEN
        outcome := 'parked'; detail := format('the worker is syncing appointment %s: the cancel waits for its result', v_a.id);
        RETURN;
    ELSIF NOT calsync.is_bookable_status(v_a.status) THEN
        outcome := 'stale'; detail := format('appointment %s is %s: kept as it is', v_a.id, v_a.status);
        RETURN;
    ELSIF v_blocker = 'app_change' THEN
        outcome := 'conflict';
        detail := format('Cal.com cancelled booking %s (webhook delivery %s) while a change of the app to appointment %s had not reached Cal.com: the app''s change wins and is synced',
                         p_event.uid, p_delivery_id, v_a.id);
        PERFORM calsync.record_refused_calcom_change(v_a.id, 'calcom_change_loses_to_newer_app_change', detail, p_now);
        RETURN;
    END IF;
    BEGIN
        -- applied from Cal.com: nothing it writes is synced back (calsync.is_sync_loop), even where the row's
        -- sync_origin already was 'calcom' (a second change from Cal.com)
        PERFORM set_config('calsync.writer', 'calcom', true);
        UPDATE appointments a
        SET status = 'cancelled', sync_origin = 'calcom', version = v_a.version, updated_at = p_now,
            metadata = coalesce(a.metadata, '{}'::jsonb) || jsonb_build_object('calcom_cancellation', jsonb_strip_nulls(
                jsonb_build_object('uid', p_event.uid, 'reason', p_event.cancellation_reason,
                                   'cancelled_by', p_event.cancelled_by, 'at', coalesce(p_event.created_at, p_now),
                                   'webhook_delivery', p_delivery_id)))
        WHERE a.id = v_a.id;
        SET CONSTRAINTS ALL IMMEDIATE;  -- the deferred rules decide here, where a refusal can be recorded
        PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);  -- (a refusal rolls it back anyway)
        IF v_a.is_composite THEN  -- the other phases' bookings are cancelled by the worker
            PERFORM calsync.enqueue_sync(v_a.id, 'cancel', jsonb_build_object(
                'appointment_id', v_a.id, 'status', 'cancelled', 'cancelled_at_calcom', p_event.uid));
        END IF;
        outcome := 'applied';
        detail := format('appointment %s cancelled at Cal.com (booking %s)', v_a.id, p_event.uid);
    EXCEPTION
        WHEN serialization_failure THEN
            outcome := 'conflict';
            detail := format('Cal.com cancelled booking %s (webhook delivery %s) while the app changed appointment %s: the version check kept the app''s change',
                             p_event.uid, p_delivery_id, v_a.id);
            PERFORM calsync.record_refused_calcom_change(v_a.id, 'calcom_change_loses_to_newer_app_change', detail, p_now);
        WHEN integrity_constraint_violation OR data_exception OR raise_exception THEN
            GET STACKED DIAGNOSTICS v_rule = CONSTRAINT_NAME, v_msg = MESSAGE_TEXT;
            outcome := 'refused';
            detail := format('Cal.com cancelled booking %s (webhook delivery %s); rule %s refused cancelling appointment %s: %s',
                             p_event.uid, p_delivery_id, coalesce(nullif(v_rule, ''), 'unnamed'), v_a.id, v_msg);
            PERFORM calsync.record_refused_calcom_change(v_a.id, 'calcom_change_keeps_the_rules', detail, p_now);
    END;
END
$$;
COMMENT ON FUNCTION calsync.apply_calcom_cancel(calsync.webhook_event, bigint, timestamptz) IS
    'BOOKING_CANCELLED: cancel the appointment whose booking it is (a composite as a whole), marked sync_origin calcom; or list, park, or record the conflict or refusal.';
