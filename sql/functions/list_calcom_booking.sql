-- Cal.com bookings that are not ours are listed, never imported (calsync.foreign_calcom_bookings): a
-- BOOKING_CREATED lists its booking; a BOOKING_RESCHEDULED of a listed booking marks it rescheduled and lists the
-- successor; a BOOKING_CANCELLED of a listed booking marks it cancelled. Returns false when a reschedule or cancel
-- names a booking that is not listed (the caller decides: park it, or give up).
CREATE OR REPLACE FUNCTION calsync.list_calcom_booking(p_event calsync.webhook_event, p_delivery_id bigint,
                                                      p_now timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF p_event.trigger_event = 'BOOKING_CANCELLED' THEN
        UPDATE calsync.foreign_calcom_bookings
        SET status = 'cancelled', cancellation_reason = p_event.cancellation_reason, changed_at = p_now,
            delivery_id = p_delivery_id
        WHERE uid = p_event.uid;
        RETURN FOUND;
    ELSIF p_event.trigger_event = 'BOOKING_RESCHEDULED' THEN
        UPDATE calsync.foreign_calcom_bookings
        SET status = 'rescheduled', rescheduled_to_uid = p_event.uid, changed_at = p_now, delivery_id = p_delivery_id
        WHERE uid = p_event.reschedule_uid;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;
    INSERT INTO calsync.foreign_calcom_bookings
        (uid, booking_id, event_type_id, start_time, end_time, title, status, listed_at, changed_at, delivery_id)
    VALUES (p_event.uid, p_event.booking_id, p_event.event_type_id, p_event.start_time, p_event.end_time,
            p_event.title, 'accepted', p_now, p_now, p_delivery_id)
    ON CONFLICT (uid) DO NOTHING;
    RETURN true;
END
$$;
COMMENT ON FUNCTION calsync.list_calcom_booking(calsync.webhook_event, bigint, timestamptz) IS
    'List (never import) a Cal.com booking without an appointment, or follow its reschedule or cancel; false when the booking changed is not listed.';
