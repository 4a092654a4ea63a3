-- BOOKING_RESCHEDULED: Cal.com moved booking p_event.reschedule_uid, which made the new booking p_event.uid (a
-- reschedule always makes a new uid). The booking of one of our appointments: the appointment moves to the new
-- booking's time (a composite moves by as much as its phase did; the phases follow it), its booking becomes the
-- successor (appointment or phase, and calsync.synced_bookings), marked as coming from Cal.com (sync_origin =
-- 'calcom': nothing is enqueued, no echo). A composite's other phase bookings did not move at Cal.com: one
-- reschedule event is enqueued for them. Outcomes as calsync.apply_calcom_cancel; a move the rules refuse (the
-- host is busy then in our database, phases out of range, …) is refused and recorded, never lost.
CREATE OR REPLACE FUNCTION calsync.apply_calcom_reschedule(p_event calsync.webhook_event, p_delivery_id bigint,
                                                          p_now timestamptz DEFAULT now(),
                                                          OUT outcome text, OUT detail text, OUT appointment_id bigint,
                                                          OUT waiting_for text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_writer text := current_setting('calsync.writer', true);
    v_owner record;
    v_a record;
    v_phase_id bigint;
    v_phase_start timestamptz;
    v_blocker text;
    v_start timestamptz;
    v_end timestamptz;
    v_rule text;
    v_msg text;
BEGIN
    IF p_event.uid IS NULL OR p_event.reschedule_uid IS NULL OR p_event.start_time IS NULL THEN
        outcome := 'ignored'; detail := 'the payload names no uid, rescheduleUid or startTime';
        RETURN;
    END IF;
    SELECT * INTO v_owner FROM calsync.calcom_booking_owner(p_event.uid);
    IF v_owner.appointment_id IS NOT NULL THEN
        outcome := 'already_applied'; appointment_id := v_owner.appointment_id;
        detail := format('appointment %s has booking %s already', v_owner.appointment_id, p_event.uid);
        RETURN;
    END IF;
    SELECT * INTO v_owner FROM calsync.calcom_booking_owner(p_event.reschedule_uid);
    IF v_owner.appointment_id IS NULL THEN
        IF calsync.list_calcom_booking(p_event, p_delivery_id, p_now) THEN
            outcome := 'listed';
            detail := format('listed Cal.com booking %s (no appointment) rescheduled to %s', p_event.reschedule_uid, p_event.uid);
        ELSE
            outcome := 'parked'; waiting_for := p_event.reschedule_uid; appointment_id := p_event.appointment_id;
            detail := format('no appointment has booking %s yet (an earlier create or reschedule has not arrived or been recorded)',
                             p_event.reschedule_uid);
        END IF;
        RETURN;
    END IF;
    appointment_id := v_owner.appointment_id;
    SELECT a.id, a.status, a.version, a.is_composite, a.starts_at, a.ends_at, a.calcom_v2_booking_uid INTO v_a
    FROM appointments a WHERE a.id = v_owner.appointment_id;
    v_blocker := calsync.calcom_change_blocker(v_a.id);
    IF v_blocker = 'in_flight' THEN
        outcome := 'parked';
        detail := format('the worker is syncing appointment %s: the reschedule waits for its result', v_a.id);
        RETURN;
    ELSIF v_blocker = 'app_change' OR NOT calsync.is_bookable_status(v_a.status) THEN
        outcome := 'conflict';
        detail := format('Cal.com moved booking %s to %s (new booking %s, webhook delivery %s) while %s: the app''s version wins%s',
                         p_event.reschedule_uid, p_event.start_time, p_event.uid, p_delivery_id,
                         CASE WHEN v_blocker = 'app_change'
                              THEN format('a change of the app to appointment %s had not reached Cal.com', v_a.id)
                              ELSE format('appointment %s is %s in the app', v_a.id, v_a.status) END,
                         CASE WHEN v_blocker = 'app_change' THEN ' and is synced'
                              ELSE '; cancel the new booking at Cal.com, or book the appointment again' END);
        PERFORM calsync.record_refused_calcom_change(v_a.id, 'calcom_change_loses_to_newer_app_change', detail, p_now);
        RETURN;
    END IF;
    IF v_owner.phase_id IS NOT NULL THEN
        SELECT p.id, p.start_time INTO v_phase_id, v_phase_start FROM appointment_phases p WHERE p.id = v_owner.phase_id;
        v_start := v_a.starts_at + (p_event.start_time - v_phase_start);
        v_end := v_a.ends_at + (p_event.start_time - v_phase_start);
    ELSE
        v_start := p_event.start_time;
        v_end := coalesce(p_event.end_time, p_event.start_time + (v_a.ends_at - v_a.starts_at));
    END IF;
    BEGIN
        -- applied from Cal.com: nothing it writes is synced back (calsync.is_sync_loop), even where the row's
        -- sync_origin already was 'calcom' (a second change from Cal.com)
        PERFORM set_config('calsync.writer', 'calcom', true);
        UPDATE appointments a
        SET starts_at = v_start, ends_at = v_end, sync_origin = 'calcom', version = v_a.version, updated_at = p_now,
            calcom_v2_booking_uid = CASE WHEN a.calcom_v2_booking_uid = p_event.reschedule_uid THEN p_event.uid
                                         ELSE a.calcom_v2_booking_uid END,
            calcom_v2_booking_id = CASE WHEN a.calcom_v2_booking_uid = p_event.reschedule_uid
                                        THEN coalesce(p_event.booking_id::text, a.calcom_v2_booking_id)
                                        ELSE a.calcom_v2_booking_id END,
            calcom_booking_id = CASE WHEN NOT a.is_composite THEN coalesce(p_event.booking_id, a.calcom_booking_id)
                                     ELSE a.calcom_booking_id END,
            metadata = coalesce(a.metadata, '{}'::jsonb) || jsonb_build_object('calcom_reschedule', jsonb_strip_nulls(
                jsonb_build_object('from_uid', p_event.reschedule_uid, 'uid', p_event.uid,
                                   'from_starts_at', v_a.starts_at, 'rescheduled_by', p_event.rescheduled_by,
                                   'at', coalesce(p_event.created_at, p_now), 'webhook_delivery', p_delivery_id)))
        WHERE a.id = v_a.id;
        IF v_phase_id IS NOT NULL THEN
            UPDATE appointment_phases p
            SET calcom_booking_uid = p_event.uid, calcom_booking_id = p_event.booking_id, updated_at = p_now
            WHERE p.id = v_phase_id;
        END IF;
        UPDATE calsync.synced_bookings b
        SET uid = p_event.uid, booking_id = p_event.booking_id, start_at = p_event.start_time,
            end_at = p_event.end_time, synced_at = p_now
        WHERE b.appointment_id = v_a.id AND b.slot = coalesce(v_phase_id, 0) AND b.uid = p_event.reschedule_uid;
        SET CONSTRAINTS ALL IMMEDIATE;  -- the deferred rules decide here, where a refusal can be recorded
        PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);  -- (a refusal rolls it back anyway)
        IF v_a.is_composite THEN  -- the other phases' bookings follow at Cal.com
            PERFORM calsync.enqueue_sync(v_a.id, 'reschedule', jsonb_build_object(
                'appointment_id', v_a.id, 'starts_at', v_start, 'ends_at', v_end, 'moved_at_calcom', p_event.uid));
        END IF;
        outcome := 'applied';
        detail := format('appointment %s moved from %s to %s at Cal.com (booking %s is now %s)',
                         v_a.id, v_a.starts_at, v_start, p_event.reschedule_uid, p_event.uid);
    EXCEPTION
        WHEN serialization_failure THEN
            outcome := 'conflict';
            detail := format('Cal.com moved booking %s to %s (new booking %s, webhook delivery %s) while the app changed appointment %s: the version check kept the app''s change',
                             p_event.reschedule_uid, p_event.start_time, p_event.uid, p_delivery_id, v_a.id);
            PERFORM calsync.record_refused_calcom_change(v_a.id, 'calcom_change_loses_to_newer_app_change', detail, p_now);
        WHEN integrity_constraint_violation OR data_exception OR raise_exception THEN
            GET STACKED DIAGNOSTICS v_rule = CONSTRAINT_NAME, v_msg = MESSAGE_TEXT;
            outcome := 'refused';
            detail := format('Cal.com moved booking %s to %s (new booking %s, webhook delivery %s); rule %s refused moving appointment %s: %s',
                             p_event.reschedule_uid, p_event.start_time, p_event.uid, p_delivery_id,
                             coalesce(nullif(v_rule, ''), 'unnamed'), v_a.id, v_msg);
            PERFORM calsync.record_refused_calcom_change(v_a.id, 'calcom_change_keeps_the_rules', detail, p_now);
    END;
END
$$;
COMMENT ON FUNCTION calsync.apply_calcom_reschedule(calsync.webhook_event, bigint, timestamptz) IS
    'BOOKING_RESCHEDULED: move the appointment whose booking it is (phases follow) and store the successor uid, marked sync_origin calcom; or list, park, or record the conflict or refusal.';
