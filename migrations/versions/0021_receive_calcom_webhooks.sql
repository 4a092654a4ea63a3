-- Frozen SQL of revision 0021 (never edit; sql/ holds the current definitions).

-- name: contract
-- from: sql/types/webhook_contract.sql
-- The typed record the webhook receiver passes to the database (worker/webhooks/contract.py WebhookEvent is the
-- Python twin, field for field; tests/test_contract.py compares them). Created by revision 0021; a change is a new
-- revision (ALTER TYPE … ADD ATTRIBUTE appends). What the receiver read out of one authentic Cal.com delivery:
-- the envelope's trigger and createdAt, and the payload's booking fields (texts cut, numbers in range, times
-- parsed); NULL where the payload has no usable value.
CREATE TYPE calsync.webhook_event AS (
    company_id bigint, trigger_event text, event_key text, created_at timestamptz, uid text, reschedule_uid text,
    booking_id bigint, event_type_id bigint, start_time timestamptz, end_time timestamptz, status text,
    appointment_id bigint, phase_id bigint, cancellation_reason text, cancelled_by text, rescheduled_by text,
    title text);

-- name: tables
CREATE TABLE calsync.webhook_deliveries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    company_id     bigint,
    event_key      text NOT NULL,
    trigger_event  text NOT NULL,
    booking_uid    text,
    event          calsync.webhook_event NOT NULL,
    body           text NOT NULL,
    body_size      bigint NOT NULL,
    headers        jsonb NOT NULL,
    signature      text NOT NULL CONSTRAINT webhook_deliveries_signature_checked CHECK (signature IN ('valid', 'unsigned')),
    outcome        text NOT NULL CONSTRAINT webhook_deliveries_outcome_known CHECK (outcome IN (
                       'applied', 'already_applied', 'duplicate', 'ignored', 'listed', 'parked',
                       'conflict', 'refused', 'stale', 'unmatched')),
    detail         text,
    appointment_id bigint,
    duplicate_of   bigint CONSTRAINT webhook_deliveries_duplicate_of_a_first_delivery
                       REFERENCES calsync.webhook_deliveries (id),
    waiting_for    text,
    attempts       bigint NOT NULL DEFAULT 1,
    next_attempt_at timestamptz,
    decided_at     timestamptz,
    CONSTRAINT webhook_deliveries_parked_has_a_next_attempt CHECK (outcome <> 'parked' OR next_attempt_at IS NOT NULL)
);
CREATE UNIQUE INDEX webhook_deliveries_one_first_delivery_per_event ON calsync.webhook_deliveries (event_key)
    WHERE duplicate_of IS NULL;
CREATE INDEX webhook_deliveries_parked_due_index ON calsync.webhook_deliveries (next_attempt_at)
    WHERE outcome = 'parked';
CREATE INDEX webhook_deliveries_parked_waiting_index ON calsync.webhook_deliveries (waiting_for)
    WHERE outcome = 'parked';
CREATE INDEX webhook_deliveries_not_applied_index ON calsync.webhook_deliveries (id)
    WHERE outcome IN ('conflict', 'refused', 'unmatched', 'parked');
CREATE INDEX webhook_deliveries_received_at_index ON calsync.webhook_deliveries (received_at);
COMMENT ON TABLE calsync.webhook_deliveries IS
    'Every authentic Cal.com webhook delivery (calsync.receive_webhook): raw body, headers without secrets, outcome. Kept, never deleted.';
COMMENT ON COLUMN calsync.webhook_deliveries.event_key IS
    'what makes two deliveries the same event: trigger:uid for booking triggers (a uid is created, rescheduled to and cancelled once), else sha256:<hex of the body>';
COMMENT ON COLUMN calsync.webhook_deliveries.event IS 'what the receiver read from the body (worker/webhooks/contract.py)';
COMMENT ON COLUMN calsync.webhook_deliveries.body IS 'the raw body as received (UTF-8 JSON)';
COMMENT ON COLUMN calsync.webhook_deliveries.headers IS 'the request headers without the signature or anything secret';
COMMENT ON COLUMN calsync.webhook_deliveries.signature IS 'valid (HMAC checked) or unsigned (accepted by CALSYNC_WEBHOOK_ALLOW_UNSIGNED)';
COMMENT ON COLUMN calsync.webhook_deliveries.outcome IS
    'applied, already_applied, duplicate, ignored, listed, parked, conflict, refused, stale or unmatched (calsync.apply_webhook)';
COMMENT ON COLUMN calsync.webhook_deliveries.duplicate_of IS 'a redelivery: the first delivery of the same event';
COMMENT ON COLUMN calsync.webhook_deliveries.waiting_for IS 'parked: the booking uid it waits for, when that is what it waits for';

CREATE TABLE calsync.foreign_calcom_bookings (
    uid                 text PRIMARY KEY,
    booking_id          bigint,
    event_type_id       bigint,
    start_time          timestamptz,
    end_time            timestamptz,
    title               text,
    status              text NOT NULL CONSTRAINT foreign_calcom_bookings_status_known
                            CHECK (status IN ('accepted', 'cancelled', 'rescheduled')),
    rescheduled_to_uid  text,
    cancellation_reason text,
    listed_at           timestamptz NOT NULL,
    changed_at          timestamptz NOT NULL,
    delivery_id         bigint
);
COMMENT ON TABLE calsync.foreign_calcom_bookings IS
    'Cal.com bookings without an appointment of ours, listed from webhooks (never imported); followed through reschedules and cancels.';

-- name: settings
INSERT INTO calsync.settings (key, value, description) VALUES
    ('webhook_park_base', '2 seconds', 'a parked webhook delivery is tried again after this, doubling per attempt'),
    ('webhook_park_cap', '5 minutes', 'longest wait between two attempts at a parked webhook delivery'),
    ('webhook_park_max', '1 day', 'a webhook delivery parked longer than this is unmatched (kept, shown in remediation.refused_calcom_changes)')
ON CONFLICT (key) DO NOTHING;

-- name: functions
-- from: sql/functions/webhook_setting.sql
-- from: sql/functions/calcom_booking_owner.sql
-- from: sql/functions/calcom_change_blocker.sql
-- from: sql/functions/record_refused_calcom_change.sql
-- from: sql/functions/list_calcom_booking.sql
-- from: sql/functions/apply_calcom_cancel.sql
-- from: sql/functions/apply_calcom_reschedule.sql
-- from: sql/functions/retry_parked_webhooks.sql
-- from: sql/functions/decide_webhook.sql
-- from: sql/functions/apply_webhook.sql
-- from: sql/functions/receive_webhook.sql
-- from: sql/functions/receive_webhooks.sql
-- The webhook receiver's intervals from calsync.settings (webhook_park_base, webhook_park_cap, webhook_park_max),
-- with their defaults when a row is missing.
CREATE OR REPLACE FUNCTION calsync.webhook_setting(p_key text) RETURNS interval
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'webhook_park_base' THEN interval '2 seconds'
                               WHEN 'webhook_park_cap' THEN interval '5 minutes'
                               WHEN 'webhook_park_max' THEN interval '1 day' END)
$$;
COMMENT ON FUNCTION calsync.webhook_setting(text) IS
    'An interval setting of the webhook receiver (calsync.settings), else its default.';

-- Whose booking is this Cal.com uid: the phase that holds it (a composite's booking), else the appointment that
-- holds it (a live one first). Both NULL when no appointment of ours holds it now.
CREATE OR REPLACE FUNCTION calsync.calcom_booking_owner(p_uid text, OUT appointment_id bigint, OUT phase_id bigint)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    IF p_uid IS NULL THEN
        RETURN;
    END IF;
    SELECT p.appointment_id, p.id INTO appointment_id, phase_id
    FROM appointment_phases p WHERE p.calcom_booking_uid = p_uid LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT a.id INTO appointment_id
    FROM appointments a WHERE a.calcom_v2_booking_uid = p_uid
    ORDER BY a.status IN ('cancelled', 'no_show'), a.id DESC LIMIT 1;
END
$$;
COMMENT ON FUNCTION calsync.calcom_booking_owner(text) IS
    'The appointment (and, for a composite, the phase) whose current Cal.com booking is this uid; NULLs when none is.';

-- What keeps a change from Cal.com from applying to an appointment right now, by one rule: a Cal.com change is
-- made on the appointment as Cal.com last had it. 'in_flight': the worker holds an event of the appointment (its
-- result is not recorded yet; the change waits for it, parked). 'app_change': the app changed the appointment and
-- that change has not reached Cal.com yet (an undelivered, not dead, outbox event): the app's version is newer, so
-- it wins and goes to Cal.com. NULL: nothing; the change is applied under the optimistic version check.
CREATE OR REPLACE FUNCTION calsync.calcom_change_blocker(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM calsync.outbox_delivery d
                     WHERE d.aggregateid = p_appointment_id::text AND d.status = 'running') THEN 'in_flight'
        WHEN EXISTS (SELECT 1 FROM calsync.outbox o
                     LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
                     WHERE o.aggregateid = p_appointment_id::text AND d.status IS DISTINCT FROM 'dead') THEN 'app_change'
    END
$$;
COMMENT ON FUNCTION calsync.calcom_change_blocker(bigint) IS
    'in_flight (the worker holds an event of the appointment), app_change (an undelivered app change is newer than Cal.com''s view) or NULL.';

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

-- Try parked deliveries again: those due (next_attempt_at <= p_now), or, with p_waiting_for, those waiting for
-- that booking uid (whatever their time). Oldest first by Cal.com's createdAt, so a chain applies in order; rows
-- another session is applying are skipped. Returns how many left the parked state. The receiver calls it on a
-- timer (CALSYNC_WEBHOOK_RETRY_S); calsync.apply_webhook calls it for the booking a delivery settled.
CREATE OR REPLACE FUNCTION calsync.retry_parked_webhooks(p_now timestamptz DEFAULT now(), p_waiting_for text DEFAULT NULL,
                                                        p_limit integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_outcome text;
    v_settled integer := 0;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.retry_parked_webhooks: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    FOR v_id IN
        SELECT d.id FROM calsync.webhook_deliveries d
        WHERE d.outcome = 'parked'
          AND CASE WHEN p_waiting_for IS NULL THEN d.next_attempt_at <= p_now ELSE d.waiting_for = p_waiting_for END
        ORDER BY (d.event).created_at NULLS LAST, d.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    LOOP
        SELECT r.outcome INTO v_outcome FROM calsync.apply_webhook(v_id, p_now) r;
        IF v_outcome <> 'parked' THEN
            v_settled := v_settled + 1;
        END IF;
    END LOOP;
    RETURN v_settled;
END
$$;
COMMENT ON FUNCTION calsync.retry_parked_webhooks(timestamptz, text, integer) IS
    'Apply parked Cal.com deliveries again (due ones, or those waiting for one booking uid); returns how many settled.';

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
    IF v_first.id IS NULL AND v_outcome <> 'parked' AND v_e.uid IS NOT NULL THEN
        PERFORM calsync.retry_parked_webhooks(p_now, v_e.uid);
    END IF;
    RETURN QUERY SELECT v_id, v_outcome, v_detail, v_appointment;
END
$$;
COMMENT ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz) IS
    'Store one authentic Cal.com webhook delivery and apply it, exactly once per event (a redelivery is kept as a duplicate and changes nothing).';

-- Several authentic deliveries in one call and one commit (the receiver groups the deliveries that arrive while
-- its connections are busy: one commit, one WAL flush for all of them, as PostgreSQL's group commit would).
-- p_deliveries is a JSON array of {event, body, headers, signature}; each element goes through
-- calsync.receive_webhook in order, so the result is the same as one call each. Returns one row per element,
-- with its place (ord, from 1) in the array. An error aborts the whole call: the receiver then sends the deliveries
-- one at a time, so one bad delivery never holds up the others.
CREATE OR REPLACE FUNCTION calsync.receive_webhooks(p_deliveries jsonb, p_now timestamptz DEFAULT now())
RETURNS TABLE (ord bigint, delivery_id bigint, outcome text, detail text, appointment_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_item jsonb;
    v_ord bigint;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.receive_webhooks: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    FOR v_item, v_ord IN SELECT x.value, x.ordinality FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS x LOOP
        RETURN QUERY SELECT v_ord, r.delivery_id, r.outcome, r.detail, r.appointment_id
                     FROM calsync.receive_webhook(v_item->'event', v_item->>'body', v_item->'headers',
                                                  v_item->>'signature', p_now) r;
    END LOOP;
END
$$;
COMMENT ON FUNCTION calsync.receive_webhooks(jsonb, timestamptz) IS
    'Store and apply several Cal.com deliveries in one call and one commit, each as calsync.receive_webhook would.';

-- name: views
-- from: sql/views/remediation/calcom_bookings_without_appointment.sql
-- from: sql/views/remediation/refused_calcom_changes.sql
-- Cal.com bookings that no appointment of ours holds, as Cal.com's webhooks told of them (listed, never imported:
-- calsync.foreign_calcom_bookings). Live ones only; the title (which may name the attendee) stays in the table.
CREATE OR REPLACE VIEW remediation.calcom_bookings_without_appointment AS
SELECT b.uid, b.booking_id, b.event_type_id, b.start_time, b.end_time, b.listed_at, b.changed_at, b.delivery_id,
       'Made at Cal.com, not in the app: enter it in the app if the salon''s calendar must hold it (then cancel '
       || 'this one at Cal.com), or leave it at Cal.com only'::text AS recommended_action
FROM calsync.foreign_calcom_bookings b
WHERE b.status = 'accepted';
COMMENT ON VIEW remediation.calcom_bookings_without_appointment IS
    'Live Cal.com bookings without an appointment of ours (from BOOKING_CREATED webhooks), listed, not imported.';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.uid IS 'the booking''s Cal.com uid';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.booking_id IS 'its numeric Cal.com id';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.event_type_id IS 'its Cal.com event type';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.start_time IS 'when it starts';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.end_time IS 'when it ends';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.listed_at IS 'when the webhook listed it';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.changed_at IS 'when a webhook last changed it';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.delivery_id IS 'the last delivery about it (calsync.webhook_deliveries)';
COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.recommended_action IS 'what to do';

-- Changes Cal.com sent (webhooks) that were not applied: lost to a newer app change (conflict), refused by a rule
-- (refused), or never matched to a booking we know (unmatched); also those still waiting (parked). Each conflict
-- and refusal is an open calsync.integrity_issues row of its appointment, flagged for manual review.
CREATE OR REPLACE VIEW remediation.refused_calcom_changes AS
SELECT d.id AS delivery_id, d.received_at, d.trigger_event, d.booking_uid, (d.event).reschedule_uid AS reschedule_uid,
       (d.event).start_time AS calcom_start_time, d.appointment_id, d.outcome, d.detail, d.attempts,
       d.next_attempt_at,
       CASE d.outcome
           WHEN 'conflict' THEN 'The app''s change was kept and goes to Cal.com: tell the customer, or apply Cal.com''s change in the app'
           WHEN 'refused' THEN 'Move or cancel the appointment in the app to what the customer wants (the rule in the detail refused Cal.com''s change), then resolve the issue'
           WHEN 'unmatched' THEN 'Look the booking up at Cal.com: reconcile it with the appointment, or cancel it there'
           ELSE 'Nothing yet: it is retried by itself (calsync.retry_parked_webhooks)'
       END AS recommended_action
FROM calsync.webhook_deliveries d
WHERE d.outcome IN ('conflict', 'refused', 'unmatched', 'parked');
COMMENT ON VIEW remediation.refused_calcom_changes IS
    'Cal.com changes (webhook deliveries) not applied: conflict, refused, unmatched, or parked and waiting; with what to do.';
COMMENT ON COLUMN remediation.refused_calcom_changes.delivery_id IS 'the delivery (calsync.webhook_deliveries)';
COMMENT ON COLUMN remediation.refused_calcom_changes.received_at IS 'when it arrived';
COMMENT ON COLUMN remediation.refused_calcom_changes.trigger_event IS 'Cal.com''s trigger';
COMMENT ON COLUMN remediation.refused_calcom_changes.booking_uid IS 'the booking it is about (a reschedule: the new one)';
COMMENT ON COLUMN remediation.refused_calcom_changes.reschedule_uid IS 'a reschedule: the booking it moved';
COMMENT ON COLUMN remediation.refused_calcom_changes.calcom_start_time IS 'the start Cal.com has';
COMMENT ON COLUMN remediation.refused_calcom_changes.appointment_id IS 'our appointment, where known';
COMMENT ON COLUMN remediation.refused_calcom_changes.outcome IS 'conflict, refused, unmatched or parked';
COMMENT ON COLUMN remediation.refused_calcom_changes.detail IS 'what happened, in words';
COMMENT ON COLUMN remediation.refused_calcom_changes.attempts IS 'how often it was tried';
COMMENT ON COLUMN remediation.refused_calcom_changes.next_attempt_at IS 'parked: when it is tried again';
COMMENT ON COLUMN remediation.refused_calcom_changes.recommended_action IS 'what to do';

-- name: grants
-- from: sql/grants/webhooks.sql
-- The webhook receiver's functions change appointments: not for PUBLIC. calsync_webhooks is the receiver's role:
-- it runs the three entry functions (SECURITY DEFINER: they store and apply deliveries as the schema's owner) and
-- reads the deliveries' outcomes for its health endpoint, nothing else (no table of the app, no stored body). The
-- remediation views follow roles.sql (readonly reads them: they hold no contact data).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_webhooks') THEN
        CREATE ROLE calsync_webhooks NOLOGIN;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz),
    calsync.receive_webhooks(jsonb, timestamptz),
    calsync.apply_webhook(bigint, timestamptz),
    calsync.decide_webhook(bigint, calsync.webhook_event, timestamptz, bigint, timestamptz), calsync.retry_parked_webhooks(timestamptz, text, integer),
    calsync.apply_calcom_cancel(calsync.webhook_event, bigint, timestamptz),
    calsync.apply_calcom_reschedule(calsync.webhook_event, bigint, timestamptz),
    calsync.list_calcom_booking(calsync.webhook_event, bigint, timestamptz),
    calsync.record_refused_calcom_change(bigint, text, text, timestamptz) FROM PUBLIC;
GRANT SELECT ON remediation.calcom_bookings_without_appointment, remediation.refused_calcom_changes TO calsync_readonly;
GRANT USAGE ON SCHEMA calsync TO calsync_webhooks;
GRANT EXECUTE ON FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz),
    calsync.receive_webhooks(jsonb, timestamptz), calsync.retry_parked_webhooks(timestamptz, text, integer)
    TO calsync_webhooks;
GRANT SELECT (outcome) ON calsync.webhook_deliveries TO calsync_webhooks;
GRANT SELECT ON public.alembic_version TO calsync_webhooks;  -- the head check at start (worker/ops/head.py)

-- name: loop_guard
-- from: sql/functions/is_sync_loop.sql
-- from: sql/triggers/appointments__enqueue_sync.sql
-- from: sql/triggers/appointment_phases__enqueue_sync.sql
-- Changes the worker writes itself (calsync.writer = 'worker') and changes that come from Cal.com never enqueue:
-- no loops. A change comes from Cal.com when calsync's webhook functions write it (calsync.writer = 'calcom') or
-- when the write itself marks the row so (p_sync_origin: the sync_origin an INSERT gives, or an UPDATE sets to a
-- new value; the enqueue trigger passes NULL when an UPDATE leaves sync_origin as it was). A row that came from
-- Cal.com once is the app's like any other afterwards: the app's later cancel or move of it is synced (it used to
-- be dropped for ever, because the column keeps 'calcom'). Nor do a revision's backfills enqueue
-- (calsync.writer = 'backfill'): completing old rows must not rebook them at Cal.com, which would e-mail every
-- customer.
CREATE OR REPLACE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill', 'calcom')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;
COMMENT ON FUNCTION calsync.is_sync_loop(text) IS
    'true when a change must not be synced back: written by the worker or a backfill, applied from Cal.com (calsync.writer = calcom), or marked sync_origin = calcom by this very write.';

-- An appointment created with a bookable status enqueues a create; cancelling it a cancel; becoming
-- bookable again a create; a change of starts_at, staff or service while bookable a reschedule. Not for a change
-- from Cal.com (calsync.is_sync_loop: a write that marks the row sync_origin = 'calcom', or calsync's webhooks).
CREATE OR REPLACE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    IF calsync.is_sync_loop(CASE WHEN TG_OP = 'INSERT' OR NEW.sync_origin IS DISTINCT FROM OLD.sync_origin
                                 THEN NEW.sync_origin END) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NOT calsync.is_bookable_status(NEW.status) THEN
            RETURN NULL;
        END IF;
        v_type := 'create';
    ELSIF NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled' THEN
        v_type := 'cancel';
    ELSIF calsync.is_bookable_status(NEW.status) AND NOT calsync.is_bookable_status(OLD.status) THEN
        v_type := 'create';
    ELSIF calsync.is_bookable_status(NEW.status)
          AND (NEW.starts_at, NEW.staff_id, NEW.service_id) IS DISTINCT FROM (OLD.starts_at, OLD.staff_id, OLD.service_id) THEN
        v_type := 'reschedule';
    ELSE
        RETURN NULL;
    END IF;
    PERFORM calsync.enqueue_sync(NEW.id, v_type, jsonb_build_object(
        'appointment_id', NEW.id, 'status', NEW.status, 'starts_at', NEW.starts_at, 'ends_at', NEW.ends_at,
        'staff_id', NEW.staff_id, 'service_id', NEW.service_id, 'customer_id', NEW.customer_id,
        'calcom_v2_booking_uid', NEW.calcom_v2_booking_uid));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__enqueue_sync() IS
    'Trigger appointments_enqueue_sync: create, cancel and reschedule events into calsync.outbox, in the booking''s transaction.';

CREATE OR REPLACE TRIGGER appointments_enqueue_sync
    AFTER INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE OR REPLACE TRIGGER appointments_enqueue_sync_on_change
    AFTER UPDATE OF status, starts_at, staff_id, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

-- Phases follow their appointment: phases changed on their own (not in a transaction that also wrote the
-- appointment, whose own event covers them; under a savepoint too: calsync.written_by_this_transaction)
-- enqueue a reschedule of the appointment, unless it is over:
-- Cal.com refuses bookings in the past, and history is not rebooked (revision 0011 derives the phases of
-- old composite appointments too).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF calsync.is_sync_loop(NULL) THEN  -- the worker, a backfill, or calsync's webhooks wrote it
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM old_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM new_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin);
    ELSE
        -- only phases whose time or staff need changed (the app rewrites unchanged ones)
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT n.appointment_id FROM new_phases n JOIN old_phases o ON o.id = n.id
                       WHERE (n.start_time, n.end_time, n.staff_required) IS DISTINCT FROM (o.start_time, o.end_time, o.staff_required))
          AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__enqueue_sync() IS
    'Statement triggers appointment_phases_enqueue_sync_*: phases changed on their own reschedule their appointment.';

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_update
    AFTER UPDATE ON appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

-- name: previous_loop_guard
-- The loop guard and the enqueue triggers as revisions 0004 and 0018 froze them.
-- Changes the worker writes itself (calsync.writer = 'worker') and changes that came from Cal.com
-- (sync_origin = 'calcom') never enqueue: no loops. Nor do a revision's backfills (calsync.writer =
-- 'backfill'): completing old rows must not rebook them at Cal.com, which would e-mail every customer.
CREATE OR REPLACE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;
COMMENT ON FUNCTION calsync.is_sync_loop(text) IS
    'true when a change must not be synced back: written by the worker, or originating from Cal.com.';

-- An appointment created with a bookable status enqueues a create; cancelling it a cancel; becoming
-- bookable again a create; a change of starts_at, staff or service while bookable a reschedule.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
BEGIN
    IF calsync.is_sync_loop(NEW.sync_origin) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NOT calsync.is_bookable_status(NEW.status) THEN
            RETURN NULL;
        END IF;
        v_type := 'create';
    ELSIF NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled' THEN
        v_type := 'cancel';
    ELSIF calsync.is_bookable_status(NEW.status) AND NOT calsync.is_bookable_status(OLD.status) THEN
        v_type := 'create';
    ELSIF calsync.is_bookable_status(NEW.status)
          AND (NEW.starts_at, NEW.staff_id, NEW.service_id) IS DISTINCT FROM (OLD.starts_at, OLD.staff_id, OLD.service_id) THEN
        v_type := 'reschedule';
    ELSE
        RETURN NULL;
    END IF;
    PERFORM calsync.enqueue_sync(NEW.id, v_type, jsonb_build_object(
        'appointment_id', NEW.id, 'status', NEW.status, 'starts_at', NEW.starts_at, 'ends_at', NEW.ends_at,
        'staff_id', NEW.staff_id, 'service_id', NEW.service_id, 'customer_id', NEW.customer_id,
        'calcom_v2_booking_uid', NEW.calcom_v2_booking_uid));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__enqueue_sync() IS
    'Trigger appointments_enqueue_sync: create, cancel and reschedule events into calsync.outbox, in the booking''s transaction.';

CREATE OR REPLACE TRIGGER appointments_enqueue_sync
    AFTER INSERT ON appointments
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE OR REPLACE TRIGGER appointments_enqueue_sync_on_change
    AFTER UPDATE OF status, starts_at, staff_id, service_id ON appointments
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.starts_at IS DISTINCT FROM OLD.starts_at
          OR NEW.staff_id IS DISTINCT FROM OLD.staff_id OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

-- Phases follow their appointment: phases changed on their own (not in a transaction that also wrote the
-- appointment, whose own event covers them; under a savepoint too: calsync.written_by_this_transaction)
-- enqueue a reschedule of the appointment, unless it is over:
-- Cal.com refuses bookings in the past, and history is not rebooked (revision 0011 derives the phases of
-- old composite appointments too).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__enqueue_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM old_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT appointment_id FROM new_phases) AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    ELSE
        -- only phases whose time or staff need changed (the app rewrites unchanged ones)
        PERFORM calsync.enqueue_sync(a.id, 'reschedule', jsonb_build_object('appointment_id', a.id, 'phases', 'changed'))
        FROM appointments a
        WHERE a.id IN (SELECT n.appointment_id FROM new_phases n JOIN old_phases o ON o.id = n.id
                       WHERE (n.start_time, n.end_time, n.staff_required) IS DISTINCT FROM (o.start_time, o.end_time, o.staff_required))
          AND calsync.is_bookable_status(a.status)
          AND a.ends_at > now() AND NOT calsync.written_by_this_transaction(a.xmin) AND NOT calsync.is_sync_loop(a.sync_origin);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__enqueue_sync() IS
    'Statement triggers appointment_phases_enqueue_sync_*: phases changed on their own reschedule their appointment.';

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_update
    AFTER UPDATE ON appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE OR REPLACE TRIGGER appointment_phases_enqueue_sync_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();


-- name: drop
DROP VIEW remediation.refused_calcom_changes;
DROP VIEW remediation.calcom_bookings_without_appointment;
DROP FUNCTION calsync.receive_webhooks(jsonb, timestamptz);
DROP FUNCTION calsync.receive_webhook(jsonb, text, jsonb, text, timestamptz);
DROP FUNCTION calsync.apply_webhook(bigint, timestamptz);
DROP FUNCTION calsync.decide_webhook(bigint, calsync.webhook_event, timestamptz, bigint, timestamptz);
DROP FUNCTION calsync.retry_parked_webhooks(timestamptz, text, integer);
DROP FUNCTION calsync.apply_calcom_reschedule(calsync.webhook_event, bigint, timestamptz);
DROP FUNCTION calsync.apply_calcom_cancel(calsync.webhook_event, bigint, timestamptz);
DROP FUNCTION calsync.list_calcom_booking(calsync.webhook_event, bigint, timestamptz);
DROP FUNCTION calsync.record_refused_calcom_change(bigint, text, text, timestamptz);
DROP FUNCTION calsync.calcom_change_blocker(bigint);
DROP FUNCTION calsync.calcom_booking_owner(text);
DROP FUNCTION calsync.webhook_setting(text);
DELETE FROM calsync.settings WHERE key IN ('webhook_park_base', 'webhook_park_cap', 'webhook_park_max');
DROP TABLE calsync.foreign_calcom_bookings;
DROP TABLE calsync.webhook_deliveries;
DROP TYPE calsync.webhook_event;
DO $$
BEGIN
    REVOKE ALL ON SCHEMA calsync FROM calsync_webhooks;
    DROP ROLE calsync_webhooks;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'role calsync_webhooks is still used by another database of this cluster: kept';
END
$$;
