CREATE SCHEMA calsync;

COMMENT ON SCHEMA calsync IS 'calsync: integrity rules, outbox and sync bookkeeping for the appointment tables';

CREATE SCHEMA remediation;

COMMENT ON SCHEMA remediation IS 'Views of sync problems for DBAs, and the audited runbook that fixes them';

CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

COMMENT ON EXTENSION btree_gist IS 'created by calsync revision 0002';

CREATE TYPE calsync.sync_customer AS (
	id bigint,
	name text,
	email text,
	phone text,
	email_is_placeholder boolean,
	usable_email boolean,
	usable_phone boolean,
	email_accepted boolean,
	placeholder_email text
);

CREATE TYPE calsync.sync_known_booking AS (
	slot bigint,
	uid text,
	booking_id bigint,
	start_at timestamp with time zone,
	end_at timestamp with time zone,
	event_type_id bigint
);

CREATE TYPE calsync.sync_phase AS (
	id bigint,
	sequence_order bigint,
	segment_key text,
	segment_name text,
	staff_required boolean,
	start_time timestamp with time zone,
	end_time timestamp with time zone,
	calcom_booking_uid text,
	calcom_booking_id bigint,
	calcom_sync_status text
);

CREATE TYPE calsync.sync_segment_event_type AS (
	segment_key text,
	event_type_id bigint
);

CREATE TYPE calsync.sync_service AS (
	id bigint,
	name text,
	event_type_id bigint
);

CREATE TYPE calsync.sync_superseded_booking AS (
	id bigint,
	phase_id bigint,
	uid text
);

CREATE TYPE calsync.appointment_sync_state AS (
	id bigint,
	deleted boolean,
	status text,
	starts_at timestamp with time zone,
	ends_at timestamp with time zone,
	is_composite boolean,
	booking_timezone text,
	staff_id uuid,
	calcom_v2_booking_uid text,
	calcom_sync_status text,
	event_times timestamp with time zone[],
	host_conflict bigint,
	customer calsync.sync_customer,
	service calsync.sync_service,
	phases calsync.sync_phase[],
	event_map calsync.sync_segment_event_type[],
	synced calsync.sync_known_booking[],
	superseded calsync.sync_superseded_booking[],
	composite_problem text,
	composite_flagged boolean,
	phone_region text,
	language text
);

CREATE TYPE calsync.calcom_booking AS (
	uid text,
	booking_id bigint,
	event_type_id bigint,
	status text,
	start_at timestamp with time zone,
	end_at timestamp with time zone,
	metadata_appointment text,
	metadata_phase text,
	rescheduled_to_uid text,
	rescheduled_from_uid text,
	cancellation_reason text,
	found boolean
);

CREATE TYPE calsync.reconcile_finding AS (
	id bigint,
	kind text,
	uid text,
	booking_id bigint,
	appointment_id bigint,
	slot bigint,
	repair text,
	detail text,
	successor_uid text,
	successor_booking_id bigint,
	calcom_start timestamp with time zone,
	calcom_end timestamp with time zone,
	our_start timestamp with time zone,
	our_end timestamp with time zone,
	event_type_id bigint,
	is_new boolean
);

CREATE TYPE calsync.sync_booking_fact AS (
	phase_id bigint,
	uid text,
	booking_id bigint,
	start_at timestamp with time zone,
	end_at timestamp with time zone,
	event_type_id bigint,
	cancelled boolean
);

CREATE TYPE calsync.sync_decision AS (
	event_id uuid,
	appointment_id bigint,
	outcome text,
	category text,
	error text,
	message text,
	detail jsonb,
	retry_after_s double precision,
	made_progress boolean,
	exchanges integer
);

CREATE TYPE calsync.sync_exchange AS (
	phase_id bigint,
	action text,
	request_method text,
	request_path text,
	request_body jsonb,
	response_status bigint,
	response_headers jsonb,
	response_body text,
	response_size bigint,
	response_truncated boolean,
	duration_ms double precision,
	category text,
	error text,
	at timestamp with time zone
);

CREATE TYPE calsync.sync_failure_detail AS (
	message text,
	field text,
	http_status bigint,
	action text,
	phase_id bigint,
	request_id text
);

CREATE TYPE calsync.sync_phone_finding AS (
	customer_id bigint,
	value text,
	reason text
);

CREATE TYPE calsync.sync_result AS (
	event_id uuid,
	appointment_id bigint,
	category text,
	skipped boolean,
	error text,
	detail calsync.sync_failure_detail,
	retry_after_s double precision,
	bookings calsync.sync_booking_fact[],
	superseded bigint[],
	exchanges calsync.sync_exchange[],
	phone_findings calsync.sync_phone_finding[]
);

CREATE TYPE calsync.webhook_event AS (
	company_id bigint,
	trigger_event text,
	event_key text,
	created_at timestamp with time zone,
	uid text,
	reschedule_uid text,
	booking_id bigint,
	event_type_id bigint,
	start_time timestamp with time zone,
	end_time timestamp with time zone,
	status text,
	appointment_id bigint,
	phase_id bigint,
	cancellation_reason text,
	cancelled_by text,
	rescheduled_by text,
	title text
);

CREATE TYPE remediation.change AS (
	step text,
	table_name text,
	row_id bigint,
	action text,
	before jsonb,
	after jsonb
);

COMMENT ON TYPE remediation.change IS 'One change of a runbook step: what it did (or would do) to which row, before and after.';

CREATE FUNCTION calsync.apply_calcom_cancel(p_event calsync.webhook_event, p_delivery_id bigint, p_now timestamp with time zone DEFAULT now(), OUT outcome text, OUT detail text, OUT appointment_id bigint, OUT waiting_for text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.apply_calcom_cancel(p_event calsync.webhook_event, p_delivery_id bigint, p_now timestamp with time zone, OUT outcome text, OUT detail text, OUT appointment_id bigint, OUT waiting_for text) IS 'BOOKING_CANCELLED: cancel the appointment whose booking it is (a composite as a whole), marked sync_origin calcom; or list, park, or record the conflict or refusal.';

CREATE FUNCTION calsync.apply_calcom_reschedule(p_event calsync.webhook_event, p_delivery_id bigint, p_now timestamp with time zone DEFAULT now(), OUT outcome text, OUT detail text, OUT appointment_id bigint, OUT waiting_for text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.apply_calcom_reschedule(p_event calsync.webhook_event, p_delivery_id bigint, p_now timestamp with time zone, OUT outcome text, OUT detail text, OUT appointment_id bigint, OUT waiting_for text) IS 'BOOKING_RESCHEDULED: move the appointment whose booking it is (phases follow) and store the successor uid, marked sync_origin calcom; or list, park, or record the conflict or refusal.';

CREATE FUNCTION calsync.apply_webhook(p_id bigint, p_now timestamp with time zone DEFAULT now(), OUT outcome text, OUT detail text, OUT appointment_id bigint) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.apply_webhook(p_id bigint, p_now timestamp with time zone, OUT outcome text, OUT detail text, OUT appointment_id bigint) IS 'Apply a parked Cal.com delivery again and record the outcome; then retry the deliveries waiting for its booking.';

CREATE FUNCTION calsync.appointment_sync_state(p_ids bigint[]) RETURNS SETOF calsync.appointment_sync_state
    LANGUAGE sql STABLE
    AS $$
    SELECT ROW(
        x.id, a.id IS NULL, CASE WHEN a.id IS NULL THEN 'cancelled' ELSE a.status END, a.starts_at, a.ends_at,
        coalesce(a.is_composite, false), a.booking_timezone, a.staff_id, a.calcom_v2_booking_uid,
        a.calcom_sync_status,
        -- the times the appointment had in its undelivered events (where an earlier attempt may have booked it)
        coalesce((SELECT array_agg(DISTINCT (o.payload->>'starts_at')::timestamptz) FROM calsync.outbox o
                  WHERE a.id IS NOT NULL AND o.aggregateid = a.id::text AND o.payload ? 'starts_at'), '{}'),
        -- a host conflict listed as a known issue (grandfathered by the rules' pre-flight, or flagged by the
        -- runbook) that still exists: not synced until the business reschedules one of the bookings
        CASE WHEN EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'host_busy_time_no_overlap' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL)
            THEN (SELECT h.other_id FROM remediation.host_conflicts_of(a.id) AS h LIMIT 1) END,
        -- usable_email and email_accepted are one rule (Cal.com's, calsync.is_usable_email); an e-mail it refuses is
        -- never sent: placeholder_email goes in its place (the stored e-mail is kept for someone to correct)
        CASE WHEN c.id IS NOT NULL THEN ROW(
            c.id, c.name, c.email, c.phone, coalesce(c.email_is_placeholder, false), calsync.is_usable_email(c.email),
            calsync.is_usable_phone(c.phone), calsync.is_usable_email(c.email),
            calsync.placeholder_email(c.id))::calsync.sync_customer END,
        CASE WHEN s.id IS NOT NULL THEN ROW(s.id, s.name, s.calcom_event_type_id)::calsync.sync_service END,
        coalesce((
            SELECT array_agg(ROW(p.id, p.sequence_order, p.segment_key, p.segment_name, p.staff_required,
                                 p.start_time, p.end_time, p.calcom_booking_uid, p.calcom_booking_id,
                                 p.calcom_sync_status)::calsync.sync_phase ORDER BY p.sequence_order, p.id)
            FROM appointment_phases p WHERE p.appointment_id = a.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(m.segment_key, coalesce(m.child_event_type_id, m.event_type_id))
                             ::calsync.sync_segment_event_type ORDER BY m.segment_key)
            FROM calcom_event_map m
            WHERE m.service_id = a.service_id AND m.staff_id = a.staff_id
              AND coalesce(m.child_event_type_id, m.event_type_id) IS NOT NULL), '{}'),
        coalesce((
            SELECT array_agg(ROW(b.slot, b.uid, b.booking_id, b.start_at, b.end_at, b.event_type_id)
                             ::calsync.sync_known_booking ORDER BY b.slot)
            FROM calsync.synced_bookings b WHERE b.appointment_id = x.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(sp.id, sp.phase_id, sp.calcom_booking_uid)::calsync.sync_superseded_booking
                             ORDER BY sp.id)
            FROM calsync.superseded_phases sp
            WHERE sp.appointment_id = a.id AND sp.calcom_booking_uid IS NOT NULL AND sp.calcom_cancelled_at IS NULL),
            '{}'),
        (SELECT i.detail FROM calsync.integrity_issues i
         WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
           AND i.resolved_at IS NULL LIMIT 1),
        EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL),
        -- the salon's phone region and attendee language (NULL: the worker's defaults)
        cs.phone_region, cs.language
    )::calsync.appointment_sync_state
    FROM unnest(p_ids) AS x(id)
    LEFT JOIN appointments a ON a.id = x.id
    LEFT JOIN customers c ON c.id = a.customer_id
    LEFT JOIN services s ON s.id = a.service_id
    LEFT JOIN calsync.company_settings cs ON cs.company_id = a.company_id
$$;

COMMENT ON FUNCTION calsync.appointment_sync_state(p_ids bigint[]) IS 'What the worker needs to sync these appointments, one calsync.appointment_sync_state each (deleted ones too).';

CREATE FUNCTION calsync.authenticate_worker(p_function text, p_worker text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_token text := nullif(current_setting('calsync.worker_token', true), '');
BEGIN
    IF v_token IS NULL AND calsync.caller_is_admin() THEN
        RETURN;
    END IF;
    -- one message whether the id is unknown or its secret differs: the error tells no one which ids exist
    IF v_token IS NULL OR NOT EXISTS (
        SELECT 1 FROM calsync.outbox_listeners l
        WHERE l.worker_id = p_worker AND l.token_hash = sha256(convert_to(v_token, 'UTF8'))) THEN
        RAISE EXCEPTION '%: this session is not worker % (no worker of that id is registered under its calsync.worker_token)',
                        p_function, p_worker
            USING ERRCODE = 'CS020', CONSTRAINT = 'worker_token_matches',
                  HINT = 'A worker sets calsync.worker_token on each connection, registers with calsync.register_listener(worker_id), and then acts only as that worker.';
    END IF;
END
$$;

COMMENT ON FUNCTION calsync.authenticate_worker(p_function text, p_worker text) IS 'Refuse (CS020, worker_token_matches) a session that is not p_worker: it must present the secret registered for p_worker in calsync.worker_token; an admin session without one may act for any worker.';

CREATE FUNCTION calsync.backfill_composite_phases(p_after_id bigint, p_batch integer) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_last bigint;
    v_id bigint;
BEGIN
    PERFORM set_config('calsync.writer', 'backfill', true);
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM appointments WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    FOR v_id IN
        SELECT a.id FROM appointments a
        WHERE a.id > p_after_id AND a.id <= v_last AND a.is_composite
          AND a.status NOT IN ('cancelled', 'no_show')
          AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
        ORDER BY a.id
    LOOP
        PERFORM calsync.create_missing_phases(v_id, 'backfill of revision 0011');
    END LOOP;
    RETURN v_last;
END
$$;

COMMENT ON FUNCTION calsync.backfill_composite_phases(p_after_id bigint, p_batch integer) IS 'One batch of the composite-phases backfill: appointments with id in (after_id, returned id]; NULL when done.';

CREATE FUNCTION calsync.calcom_booking_owner(p_uid text, OUT appointment_id bigint, OUT phase_id bigint) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.calcom_booking_owner(p_uid text, OUT appointment_id bigint, OUT phase_id bigint) IS 'The appointment (and, for a composite, the phase) whose current Cal.com booking is this uid; NULLs when none is.';

CREATE FUNCTION calsync.calcom_change_blocker(p_appointment_id bigint) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN CASE
        WHEN EXISTS (SELECT 1 FROM calsync.outbox_delivery d
                     WHERE d.aggregateid = p_appointment_id::text AND d.status = 'running') THEN 'in_flight'
        WHEN EXISTS (SELECT 1 FROM calsync.outbox o
                     LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
                     WHERE o.aggregateid = p_appointment_id::text AND d.status IS DISTINCT FROM 'dead') THEN 'app_change'
    END;
END
$$;

COMMENT ON FUNCTION calsync.calcom_change_blocker(p_appointment_id bigint) IS 'in_flight (the worker holds an event of the appointment), app_change (an undelivered app change is newer than Cal.com''s view) or NULL.';

CREATE FUNCTION calsync.caller_is_admin() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT pg_has_role(CASE WHEN current_setting('role') = 'none' THEN session_user
                            ELSE current_setting('role')::name END,
                       (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'calsync'), 'USAGE')
$$;

COMMENT ON FUNCTION calsync.caller_is_admin() IS 'True when the calling session''s role (SET ROLE, else the login role) has the calsync schema owner''s privileges or is a superuser: no worker limit applies.';

CREATE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval, p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT c.outbox_id, c.appointment_id, c.event_type, c.attempts, c.covers_seq
    FROM calsync.claim_sync_events(p_worker, p_limit, p_lease, '{}'::bigint[], p_limit, p_now) AS c
$$;

COMMENT ON FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval, p_now timestamp with time zone) IS 'Claim up to p_limit outbox events under a lease, at most one per appointment, companies interleaved (the claim of workers before revision 0023).';

CREATE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval, p_skip_companies bigint[], p_per_company integer, p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint, company_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    PERFORM calsync.authenticate_worker('calsync.claim_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.claim_sync_events', p_now,
                                          p_lease => coalesce(p_lease, interval '0'));
    RETURN QUERY
    WITH RECURSIVE lanes AS (  -- the companies that have events: one index probe each
        (SELECT o.company_id FROM calsync.outbox o WHERE o.company_id IS NOT NULL ORDER BY o.company_id LIMIT 1)
        UNION ALL
        SELECT (SELECT o.company_id FROM calsync.outbox o WHERE o.company_id > l.company_id
                ORDER BY o.company_id LIMIT 1)
        FROM lanes l WHERE l.company_id IS NOT NULL
    ), open_lanes AS (
        SELECT l.company_id FROM lanes l
        WHERE l.company_id IS NOT NULL AND NOT l.company_id = ANY (coalesce(p_skip_companies, '{}'))
    ), claimable AS (  -- each company's oldest claimable events
        SELECT c.id, c.seq, c.company_id
        FROM open_lanes l
        CROSS JOIN LATERAL (
            SELECT o.id, o.seq, o.company_id
            FROM calsync.outbox o
            LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
            -- a range, not =: with = the planner drops company_id from the order and may walk outbox_seq_unique
            -- filtering on the company (all of a 100,000-event backlog for a quiet company's one event)
            WHERE o.company_id BETWEEN l.company_id AND l.company_id
              AND o.aggregatetype = 'appointment'
              AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
              AND NOT EXISTS (
                  SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
                  WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
            ORDER BY o.company_id, o.seq  -- the order of outbox_company_id_seq_index
            LIMIT greatest(coalesce(p_per_company, p_limit), 1)
        ) AS c
        UNION ALL  -- events whose appointment was gone when they were enqueued (no company): a lane of their own
        SELECT * FROM (
            SELECT o.id, o.seq, o.company_id
            FROM calsync.outbox o
            LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
            WHERE o.company_id IS NULL
              AND o.aggregatetype = 'appointment'
              AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
              AND NOT EXISTS (
                  SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
                  WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
            ORDER BY o.company_id, o.seq
            LIMIT greatest(coalesce(p_per_company, p_limit), 1)
        ) AS n
    ), candidates AS (  -- round r holds every company's r-th event
        SELECT c.id, c.seq, row_number() OVER (PARTITION BY c.company_id ORDER BY c.seq) AS round FROM claimable c
    ), heads AS (
        SELECT o.id, o.aggregateid, o.type, o.company_id
        FROM calsync.outbox o JOIN candidates c ON c.id = o.id
        ORDER BY c.round, c.seq
        LIMIT p_limit
        FOR UPDATE OF o SKIP LOCKED
    ), claimed AS (
        INSERT INTO calsync.outbox_delivery AS d
            (outbox_id, aggregateid, status, attempts, locked_by, locked_until, covers_seq, next_attempt_at)
        SELECT h.id, h.aggregateid, 'running', 1, p_worker, p_now + p_lease,
               (SELECT max(x.seq) FROM calsync.outbox x WHERE x.aggregateid = h.aggregateid), p_now
        FROM heads h
        ON CONFLICT ON CONSTRAINT outbox_delivery_pkey DO UPDATE
            SET status = 'running', attempts = d.attempts + 1, locked_by = excluded.locked_by,
                locked_until = excluded.locked_until, covers_seq = excluded.covers_seq
            WHERE d.status = 'retry'
        RETURNING d.outbox_id, d.aggregateid, d.attempts, d.covers_seq
    )
    SELECT c.outbox_id, c.aggregateid::bigint, h.type, c.attempts, c.covers_seq, h.company_id
    FROM claimed c JOIN heads h ON h.id = c.outbox_id;
END
$$;

COMMENT ON FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval, p_skip_companies bigint[], p_per_company integer, p_now timestamp with time zone) IS 'Claim up to p_limit outbox events under a lease, at most one per appointment and p_per_company per company, companies interleaved, p_skip_companies left alone (one statement, SKIP LOCKED).';

CREATE FUNCTION calsync.clear_key_problem(p_worker text, p_key_ref text, p_now timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.clear_key_problem', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.clear_key_problem', p_now);
    UPDATE calsync.key_problems SET resolved_at = p_now WHERE key_ref = p_key_ref AND resolved_at IS NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

COMMENT ON FUNCTION calsync.clear_key_problem(p_worker text, p_key_ref text, p_now timestamp with time zone) IS 'Resolve the open problem of a key once Cal.com accepts it again; returns how many were open (0 or 1).';

CREATE FUNCTION calsync.create_missing_phases(p_appointment_id bigint, p_found_by text) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_appt appointments%ROWTYPE;
    v_segments jsonb;
    v_service text;
    v_problem text;
    v_count integer;
BEGIN
    IF EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = p_appointment_id) THEN
        RETURN 0;  -- the common case, without taking a lock
    END IF;
    -- the row lock serialises this with writers of the same appointment (phase inserts take KEY SHARE)
    SELECT * INTO v_appt FROM appointments WHERE id = p_appointment_id FOR UPDATE;
    IF NOT FOUND OR NOT v_appt.is_composite OR v_appt.status IN ('cancelled', 'no_show')
       OR EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = p_appointment_id) THEN
        RETURN 0;
    END IF;
    SELECT segments, name INTO v_segments, v_service FROM services WHERE id = v_appt.service_id;
    v_problem := calsync.segments_problem(v_segments);
    IF v_problem IS NULL THEN
        IF EXISTS (SELECT 1 FROM calsync.derive_phases(v_segments) AS d
                   WHERE NOT calsync.phase_fits_time_range(v_appt.starts_at, d.start_offset_minutes, d.duration_minutes)) THEN
            PERFORM calsync.refuse_phases_outside_time_range(p_appointment_id, v_appt.starts_at);
        END IF;
        INSERT INTO appointment_phases (appointment_id, phase_type, segment_name, segment_key, sequence_order,
                                        start_offset_minutes, duration_minutes, staff_required, start_time,
                                        end_time, calcom_sync_status)
        SELECT p_appointment_id, d.phase_type, d.segment_name, d.segment_key, d.sequence_order,
               d.start_offset_minutes, d.duration_minutes, d.staff_required,
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes),
               v_appt.starts_at + make_interval(mins => d.start_offset_minutes) + make_interval(mins => d.duration_minutes),
               'pending'
        FROM calsync.derive_phases(v_segments) AS d;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        RETURN v_count;
    END IF;
    UPDATE appointments
    SET calcom_sync_status = 'failed',
        requires_manual_review = true,
        manual_review_flagged_at = coalesce(manual_review_flagged_at, now()),
        sync_error_code = 'COMPOSITE_FAILURE',
        sync_error_message = format('composite appointment without phases: %s (service %s, %s)',
                                    v_problem, v_appt.service_id, v_service)
    WHERE id = p_appointment_id;
    INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
    VALUES ('appointments_composite_has_phases', 'appointments', p_appointment_id,
            format('no phases could be derived: %s (service %s, %s)', v_problem, v_appt.service_id, v_service),
            p_found_by)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING;
    RETURN 0;
END
$$;

COMMENT ON FUNCTION calsync.create_missing_phases(p_appointment_id bigint, p_found_by text) IS 'Derive the phases of a live composite appointment that has none, or flag it for manual review when its service''s segments are unusable. Returns the phases created.';

CREATE FUNCTION calsync.decide_webhook(p_id bigint, p_event calsync.webhook_event, p_received_at timestamp with time zone, p_attempts bigint, p_now timestamp with time zone DEFAULT now(), OUT outcome text, OUT detail text, OUT appointment_id bigint, OUT waiting_for text, OUT next_attempt_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.decide_webhook(p_id bigint, p_event calsync.webhook_event, p_received_at timestamp with time zone, p_attempts bigint, p_now timestamp with time zone, OUT outcome text, OUT detail text, OUT appointment_id bigint, OUT waiting_for text, OUT next_attempt_at timestamp with time zone) IS 'The outcome of one Cal.com delivery by its trigger, with its effects on the app''s tables (not on the delivery row).';

CREATE FUNCTION calsync.derive_phases(p_segments jsonb) RETURNS TABLE(sequence_order integer, phase_type text, segment_name text, segment_key text, start_offset_minutes integer, duration_minutes integer, staff_required boolean)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    WITH seg AS (
        SELECT e.value AS s, e.idx,
               coalesce(calsync.segment_minutes(e.value, 'order'), 0) AS ord
        FROM jsonb_array_elements(CASE WHEN calsync.segments_problem(p_segments) IS NULL THEN p_segments
                                       ELSE '[]'::jsonb END) WITH ORDINALITY AS e(value, idx)
    ), expanded AS (
        SELECT ord, idx, 0 AS sub, left(s->>'key', 50) AS key, left(s->>'name', 255) AS name,
               calsync.segment_duration(s) AS minutes,
               s->>'type' = 'processing' AS processing,
               CASE WHEN s->>'type' = 'processing' THEN false
                    ELSE coalesce(calsync.segment_flag(s, 'staff_required'), true) END AS staff
        FROM seg
        UNION ALL
        SELECT ord, idx, 1, left(coalesce(s->>'key', '#' || idx), 46) || '_gap',
               left(coalesce(s->>'name', ''), 241) || ' (Einwirkzeit)',
               calsync.segment_minutes(s, 'gap_after'), true, false
        FROM seg
        WHERE coalesce(calsync.segment_minutes(s, 'gap_after'), 0) > 0
    )
    SELECT (row_number() OVER w)::int,
           CASE WHEN processing THEN 'processing' WHEN row_number() OVER w = 1 THEN 'initial' ELSE 'final' END,
           name, key,
           (sum(minutes::bigint) OVER w - minutes)::int,
           minutes, staff
    FROM expanded
    WINDOW w AS (ORDER BY ord, idx, sub ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ORDER BY 1
$$;

COMMENT ON FUNCTION calsync.derive_phases(p_segments jsonb) IS 'The phases of a composite service''s segments (offsets relative to the start); none when segments_problem() is not NULL. Keys and names are cut to the phase columns.';

CREATE FUNCTION calsync.enforce_worker_limits(p_function text, p_now timestamp with time zone, p_lease interval DEFAULT NULL::interval, p_keep interval DEFAULT NULL::interval, p_keep_attempts interval DEFAULT NULL::interval, p_dead_after interval DEFAULT NULL::interval) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_limit interval;
BEGIN
    IF calsync.caller_is_admin() THEN
        RETURN;
    END IF;
    IF p_now IS DISTINCT FROM now() THEN
        RAISE EXCEPTION '%: calsync_worker works at the database''s time: p_now must be now() (%), not %',
                        p_function, now(), coalesce(p_now::text, 'NULL')
            USING ERRCODE = 'CS013', CONSTRAINT = 'worker_time_is_now',
                  HINT = 'Leave p_now out (it defaults to now()); only an owner or a superuser may pass another time.';
    END IF;
    IF p_lease IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_max_lease');
        IF p_lease <= interval '0' OR p_lease > v_limit THEN
            RAISE EXCEPTION '%: a lease of % is refused: calsync_worker leases for more than 0 and at most % (calsync.settings worker_max_lease)',
                            p_function, p_lease, v_limit
                USING ERRCODE = 'CS010', CONSTRAINT = 'worker_lease_within_max',
                      HINT = 'Lease for a few minutes (CALSYNC_LEASE_S) and renew while the work runs.';
        END IF;
    END IF;
    IF p_keep IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_keep_dead');
        IF p_keep < v_limit THEN
            RAISE EXCEPTION '%: keeping dead events for % is refused: calsync_worker keeps them at least % (calsync.settings worker_min_keep_dead)',
                            p_function, p_keep, v_limit
                USING ERRCODE = 'CS011', CONSTRAINT = 'worker_keeps_history',
                      HINT = 'Call calsync.prune_sync_history() with its defaults; an owner or a superuser may prune sooner.';
        END IF;
    END IF;
    IF p_keep_attempts IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_keep_attempts');
        IF p_keep_attempts < v_limit THEN
            RAISE EXCEPTION '%: keeping sync attempts for % is refused: calsync_worker keeps them at least % (calsync.settings worker_min_keep_attempts)',
                            p_function, p_keep_attempts, v_limit
                USING ERRCODE = 'CS011', CONSTRAINT = 'worker_keeps_history',
                      HINT = 'Call calsync.prune_sync_history() with its defaults; an owner or a superuser may prune sooner.';
        END IF;
    END IF;
    IF p_dead_after IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_dead_after');
        IF p_dead_after < v_limit THEN
            RAISE EXCEPTION '%: reaping the leases of workers silent for % is refused: calsync_worker waits at least % (calsync.settings worker_min_dead_after)',
                            p_function, p_dead_after, v_limit
                USING ERRCODE = 'CS012', CONSTRAINT = 'worker_reaps_the_silent',
                      HINT = 'A live worker heart-beats every few seconds; reap after a silence of several heartbeats.';
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION calsync.enforce_worker_limits(p_function text, p_now timestamp with time zone, p_lease interval, p_keep interval, p_keep_attempts interval, p_dead_after interval) IS 'Refuse what calsync_worker may not ask (not now(): CS013; lease beyond worker_max_lease: CS010; retention below the floors: CS011; reaping before worker_min_dead_after: CS012); admins are not bound.';

CREATE FUNCTION calsync.enqueue_sync(p_appointment_id bigint, p_type text, p_payload jsonb) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload)
    VALUES ('appointment', p_appointment_id::text, p_type, p_payload)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION calsync.enqueue_sync(p_appointment_id bigint, p_type text, p_payload jsonb) IS 'Add one event (create, cancel or reschedule) for an appointment to calsync.outbox; returns its id.';

CREATE FUNCTION calsync.exchange_booking_uid(p_path text, p_body text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    SELECT coalesce(substring(left(p_body, 4096) FROM '"uid"\s*:\s*"([A-Za-z0-9_-]{1,100})"'),
                    substring(p_path FROM '^/v2/bookings/([A-Za-z0-9_-]{1,100})(?:/|$)'))
$_$;

COMMENT ON FUNCTION calsync.exchange_booking_uid(p_path text, p_body text) IS 'The booking uid of an archived exchange: the response body''s first "uid", else the one in /v2/bookings/<uid>.';

CREATE FUNCTION calsync.finish_sync_events(p_worker text, p_results jsonb, p_max_attempts integer, p_now timestamp with time zone DEFAULT now(), p_retry_base interval DEFAULT '00:00:05'::interval, p_retry_cap interval DEFAULT '01:00:00'::interval) RETURNS TABLE(recorded_event_id uuid, recorded_outcome text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_all calsync.sync_result[] := ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::calsync.sync_result, p_results) AS r);
    v_owned uuid[];
    v_last calsync.sync_result[];  -- the last result of each event this worker still holds
    v_decided calsync.sync_decision[];
    v_writer text := current_setting('calsync.writer', true);
    v_full boolean := coalesce((SELECT s.value = 'true' FROM calsync.settings s WHERE s.key = 'archive_success_bodies'),
                               false);
BEGIN
    PERFORM calsync.authenticate_worker('calsync.finish_sync_events', p_worker);  -- only as the worker it is
    PERFORM calsync.enforce_worker_limits('calsync.finish_sync_events', p_now);
    PERFORM set_config('calsync.writer', 'worker', true);  -- these writes must not enqueue (no loops)
    INSERT INTO calsync.sync_attempts
        (outbox_id, appointment_id, phase_id, worker_id, action, attempt, request_method, request_path,
         request_body, response_status, response_headers, response_body, response_size, response_truncated,
         duration_ms, category, retryable, error, created_at, booking_uid, request_size, bodies_kept)
    SELECT r.event_id, r.appointment_id, e.phase_id, p_worker, e.action, d.attempts, e.request_method,
           e.request_path, CASE WHEN x.kept THEN e.request_body END, e.response_status,
           CASE WHEN x.kept THEN e.response_headers
                ELSE nullif(jsonb_strip_nulls(jsonb_build_object('x-request-id', e.response_headers->'x-request-id')),
                            '{}') END,
           CASE WHEN x.kept THEN e.response_body END, e.response_size, e.response_truncated, e.duration_ms,
           e.category, CASE WHEN e.category <> 'OK' THEN k.retryable END, e.error, coalesce(e.at, p_now),
           calsync.exchange_booking_uid(e.request_path, e.response_body), octet_length(e.request_body::text), x.kept
    FROM unnest(v_all) WITH ORDINALITY AS r
    CROSS JOIN LATERAL unnest(r.exchanges) WITH ORDINALITY AS e
    CROSS JOIN LATERAL (SELECT e.category IS DISTINCT FROM 'OK' OR v_full AS kept) AS x
    LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = r.event_id
    LEFT JOIN remediation.categories k ON k.category = e.category
    ORDER BY r.ordinality, e.ordinality;  -- ids in the order the exchanges were made (the history reads by id)
    SELECT coalesce(array_agg(x.outbox_id), '{}') INTO v_owned
    FROM (SELECT d.outbox_id FROM calsync.outbox_delivery d
          WHERE d.outbox_id IN (SELECT r.event_id FROM unnest(v_all) AS r)
            AND d.locked_by = p_worker AND d.status = 'running'
          ORDER BY d.outbox_id FOR UPDATE) AS x;
    RETURN QUERY SELECT DISTINCT r.event_id, 'lease_lost' FROM unnest(v_all) AS r WHERE NOT r.event_id = ANY (v_owned);
    -- a batch may hold two results of one event (its lease ran out and it was claimed again): the last counts
    v_last := ARRAY(SELECT DISTINCT ON ((v_all[i]).event_id) v_all[i] FROM generate_subscripts(v_all, 1) AS i
                    WHERE (v_all[i]).event_id = ANY (v_owned) ORDER BY (v_all[i]).event_id, i DESC);
    -- what Cal.com has now, per appointment and slot (calsync.synced_bookings). One result may name a slot more
    -- than once (found by the lookup, then moved or cancelled and booked again): the last word counts.
    WITH b AS (
        SELECT DISTINCT ON ((v_all[i]).appointment_id, coalesce(f.phase_id, 0))
               (v_all[i]).appointment_id AS appointment_id, coalesce(f.phase_id, 0) AS slot, f.uid, f.booking_id,
               f.start_at, f.end_at, f.event_type_id, coalesce(f.cancelled, false) AS cancelled
        FROM generate_subscripts(v_all, 1) AS i,
             unnest((v_all[i]).bookings) WITH ORDINALITY
                 AS f(phase_id, uid, booking_id, start_at, end_at, event_type_id, cancelled, fi)
        WHERE (v_all[i]).event_id = ANY (v_owned) AND f.uid IS NOT NULL
        ORDER BY (v_all[i]).appointment_id, coalesce(f.phase_id, 0), i DESC, fi DESC
    ),
    gone AS (
        DELETE FROM calsync.synced_bookings s USING b
        WHERE b.cancelled AND s.appointment_id = b.appointment_id AND s.slot = b.slot
    )
    INSERT INTO calsync.synced_bookings AS s (appointment_id, slot, uid, booking_id, start_at, end_at, event_type_id, synced_at)
    SELECT b.appointment_id, b.slot, b.uid, b.booking_id, b.start_at, b.end_at, b.event_type_id, p_now
    FROM b WHERE NOT b.cancelled
    ON CONFLICT (appointment_id, slot) DO UPDATE
        SET uid = excluded.uid, booking_id = excluded.booking_id, start_at = excluded.start_at,
            end_at = excluded.end_at, event_type_id = excluded.event_type_id, synced_at = excluded.synced_at;
    -- phones Cal.com would refuse (libphonenumber, in the worker) are data-quality findings; fine ones resolve theirs
    PERFORM CASE WHEN f.reason IS NOT NULL
                 THEN calsync.record_contact_finding(f.customer_id, 'phone', f.value, f.reason, p_now) IS NOT NULL
                 ELSE calsync.resolve_contact_finding(f.customer_id, 'phone', p_now) END
    FROM (SELECT DISTINCT ON (f.customer_id) f.customer_id, f.value, f.reason
          FROM unnest(v_last) AS r, unnest(r.phone_findings) WITH ORDINALITY AS f(customer_id, value, reason, fi)
          ORDER BY f.customer_id, fi DESC) AS f;
    -- a booking Cal.com no longer has is no longer the live appointment's (or phase's): the app's own uid columns
    -- forget it, so that a later attempt books again instead of taking the cancelled uid for a booking that exists
    -- (the chaos soak: cancelled for a move, the new create failed, and the next attempt saw nothing to do). A slot
    -- left with no live booking forgets whatever uid the app named for it: also the one an outside reschedule
    -- moved away from, when the worker cancelled that booking's successor (the soak again).
    UPDATE appointments a SET calcom_v2_booking_uid = NULL, calcom_v2_booking_id = NULL,
        calcom_booking_id = CASE WHEN a.is_composite THEN a.calcom_booking_id END
    FROM unnest(v_last) AS r, unnest(r.bookings) AS f
    WHERE a.id = r.appointment_id AND coalesce(f.cancelled, false) AND a.calcom_v2_booking_uid IS NOT NULL
      AND a.status NOT IN ('cancelled', 'no_show', 'completed')
      -- the appointment's own slot (a composite's: its first staff-required phase, as below)
      AND CASE WHEN f.phase_id IS NOT DISTINCT FROM (
                   CASE WHEN a.is_composite THEN (SELECT min(p.id) FROM appointment_phases p
                                                  WHERE p.appointment_id = a.id AND p.staff_required) END)
               THEN NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s
                                WHERE s.appointment_id = a.id AND s.slot = coalesce(f.phase_id, 0))
               ELSE f.uid = a.calcom_v2_booking_uid
                    AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s WHERE s.appointment_id = a.id AND s.uid = f.uid) END;
    UPDATE appointment_phases p SET calcom_booking_uid = NULL, calcom_booking_id = NULL, calcom_sync_status = 'pending',
        updated_at = p_now
    FROM unnest(v_last) AS r, unnest(r.bookings) AS f
    WHERE p.appointment_id = r.appointment_id AND f.phase_id = p.id AND coalesce(f.cancelled, false)
      AND p.calcom_booking_uid IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s WHERE s.appointment_id = p.appointment_id AND s.slot = p.id);
    UPDATE calsync.superseded_phases sp SET calcom_cancelled_at = p_now
    FROM unnest(v_all) AS r, unnest(r.superseded) AS x(id)
    WHERE r.event_id = ANY (v_owned) AND sp.id = x.id AND sp.appointment_id = r.appointment_id;
    -- each event's last result, decided: its outcome (calsync.sync_outcome) and what the state changes need
    v_decided := ARRAY(
        SELECT ROW(r.event_id, r.appointment_id,
                   calsync.sync_outcome(r.category, coalesce(r.skipped, false), d.attempts, p_max_attempts),
                   r.category, r.error, coalesce((r.detail).message, r.error),
                   CASE WHEN r.detail IS DISTINCT FROM NULL THEN to_jsonb(r.detail) || jsonb_build_object(
                       'category', r.category, 'retryable', k.retryable, 'attempt', d.attempts) END,
                   r.retry_after_s, coalesce(cardinality(r.bookings), 0) > 0, coalesce(cardinality(r.exchanges), 0))::calsync.sync_decision
        FROM unnest(v_last) AS r
        JOIN calsync.outbox_delivery d ON d.outbox_id = r.event_id
        LEFT JOIN remediation.categories k ON k.category = r.category);
    RETURN QUERY SELECT x.event_id, x.outcome FROM unnest(v_decided) AS x;
    -- phases: the booking Cal.com has for each; the staff-required phases without one in this result take the
    -- event's state (synced once they have a booking, failed with the reason)
    UPDATE appointment_phases p
    SET calcom_booking_id = s.booking_id, calcom_booking_uid = s.uid, calcom_sync_status = 'synced',
        sync_error_message = NULL, updated_at = p_now
    FROM unnest(v_last) AS r
    CROSS JOIN LATERAL (SELECT DISTINCT f.phase_id FROM unnest(r.bookings) AS f
                        WHERE f.phase_id IS NOT NULL AND NOT coalesce(f.cancelled, false) AND f.uid IS NOT NULL) AS f
    JOIN calsync.synced_bookings s ON s.appointment_id = r.appointment_id AND s.slot = f.phase_id
    WHERE p.id = f.phase_id AND p.appointment_id = r.appointment_id;
    UPDATE appointment_phases p
    SET calcom_sync_status = CASE WHEN x.outcome = 'synced' THEN 'synced' ELSE 'failed' END,
        sync_error_message = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.message END,
        updated_at = p_now
    FROM unnest(v_decided) AS x
    JOIN appointments a ON a.id = x.appointment_id AND a.is_composite
    WHERE x.outcome <> 'skipped' AND p.appointment_id = x.appointment_id AND p.staff_required
      AND NOT EXISTS (SELECT 1 FROM unnest(v_last) AS r, unnest(r.bookings) AS f
                      WHERE r.event_id = x.event_id AND f.phase_id = p.id AND NOT coalesce(f.cancelled, false)
                        AND f.uid IS NOT NULL)
      AND p.calcom_sync_status IS DISTINCT FROM CASE WHEN x.outcome = 'synced' THEN 'synced' ELSE 'failed' END
      AND (x.outcome <> 'synced' OR p.calcom_booking_uid IS NOT NULL);
    -- the appointment: its booking (its own, or for a composite its first staff-required phase's, as the app
    -- did), and its sync state from the event's outcome
    UPDATE appointments a
    SET calcom_booking_id = CASE WHEN bk.live AND NOT a.is_composite THEN bk.booking_id ELSE a.calcom_booking_id END,
        calcom_v2_booking_id = CASE WHEN bk.live THEN bk.booking_id::text ELSE a.calcom_v2_booking_id END,
        calcom_v2_booking_uid = CASE WHEN bk.live THEN bk.uid ELSE a.calcom_v2_booking_uid END,
        calcom_sync_status = CASE WHEN x.outcome = 'synced' THEN 'synced' WHEN x.outcome = 'dead' THEN 'failed'
                                  WHEN a.calcom_sync_status = 'synced' THEN 'pending' ELSE a.calcom_sync_status END,
        sync_error_message = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.error END,
        sync_error_code = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.category END,
        sync_error_detail = CASE WHEN x.outcome = 'synced' THEN NULL ELSE x.detail END,
        sync_attempt_count = least(a.sync_attempt_count + x.exchanges, 32767),
        last_sync_attempt_at = p_now,
        requires_manual_review = CASE WHEN x.outcome = 'dead' THEN true WHEN x.outcome = 'synced' THEN false
                                      ELSE a.requires_manual_review END,
        manual_review_flagged_at = CASE WHEN x.outcome = 'dead' THEN coalesce(a.manual_review_flagged_at, p_now)
                                        WHEN x.outcome = 'synced' THEN NULL ELSE a.manual_review_flagged_at END
    FROM unnest(v_decided) AS x
    LEFT JOIN LATERAL (
        -- the result's last word on that booking: a live one names it; a cancelled one (found live, then
        -- cancelled for a move whose create failed) leaves the uid columns as the UPDATE above cleared them
        SELECT f.uid, f.booking_id, NOT coalesce(f.cancelled, false) AS live
        FROM unnest(v_last) AS r, unnest(r.bookings) WITH ORDINALITY AS f(phase_id, uid, booking_id, start_at, end_at,
                                                                          event_type_id, cancelled, fi)
        WHERE r.event_id = x.event_id AND f.uid IS NOT NULL
          AND f.phase_id IS NOT DISTINCT FROM (
              SELECT min(p.id) FROM appointment_phases p
              WHERE p.appointment_id = x.appointment_id AND p.staff_required
                AND EXISTS (SELECT 1 FROM appointments c WHERE c.id = x.appointment_id AND c.is_composite))
        ORDER BY fi DESC LIMIT 1
    ) AS bk ON true
    WHERE a.id = x.appointment_id AND x.outcome <> 'skipped';
    -- delivered (or nothing to deliver: skipped): the event and every earlier event of the appointment it covered
    WITH done AS (
        SELECT d.aggregateid, d.covers_seq FROM calsync.outbox_delivery d
        JOIN unnest(v_decided) AS x ON x.event_id = d.outbox_id
        WHERE x.outcome IN ('synced', 'skipped')
    ), events AS (
        DELETE FROM calsync.outbox e USING done
        WHERE e.aggregateid = done.aggregateid AND e.seq <= done.covers_seq
        RETURNING e.id
    )
    DELETE FROM calsync.outbox_delivery d USING events WHERE d.outbox_id = events.id;
    -- retry later (a rate-limited or paused try does not count as an attempt), or dead
    UPDATE calsync.outbox_delivery d
    SET status = CASE WHEN x.outcome = 'dead' THEN 'dead' ELSE 'retry' END,
        attempts = d.attempts - CASE WHEN x.outcome IN ('rate_limited', 'paused') THEN 1 ELSE 0 END,
        next_attempt_at = p_now + CASE WHEN x.outcome = 'rate_limited'
                                       THEN coalesce(x.retry_after_s, 60) * interval '1 second'
                                       -- the key or base URL is refused: due again as soon as it works (the
                                       -- worker stops claiming until a probe succeeds)
                                       WHEN x.outcome = 'paused' THEN interval '0'
                                       -- an attempt that got somewhere (some bookings made) retries soon
                                       WHEN x.made_progress THEN p_retry_base
                                       ELSE calsync.retry_delay(d.attempts, p_retry_base, p_retry_cap) END,
        locked_by = NULL, locked_until = NULL,
        last_error = x.error, last_category = x.category,
        processed_at = CASE WHEN x.outcome = 'dead' THEN p_now END
    FROM unnest(v_decided) AS x
    WHERE d.outbox_id = x.event_id AND x.outcome IN ('retry', 'dead', 'rate_limited', 'paused');
    PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
END
$$;

COMMENT ON FUNCTION calsync.finish_sync_events(p_worker text, p_results jsonb, p_max_attempts integer, p_now timestamp with time zone, p_retry_base interval, p_retry_cap interval) IS 'Record a batch of sync results (calsync.sync_result): archive the exchanges, derive every status (event, appointment, phases) from the facts, delete delivered events, schedule retries or mark dead. Returns each event''s recorded outcome (lease_lost when not the worker''s).';

CREATE FUNCTION calsync.has_email(p_email text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    -- the white space of calsync.is_blank, written out (see is_usable_phone.sql)
    SELECT p_email IS NOT NULL AND p_email !~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
$_$;

COMMENT ON FUNCTION calsync.has_email(p_email text) IS 'An e-mail is stored at all: not NULL and not blank. Whether Cal.com accepts it is calsync.is_usable_email.';

CREATE FUNCTION calsync.heartbeat_listener(p_worker text, p_idle boolean, p_now timestamp with time zone DEFAULT now()) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_token text := nullif(current_setting('calsync.worker_token', true), '');
    v_admin boolean := calsync.caller_is_admin();
    v_hash bytea;
    v_row calsync.outbox_listeners;
BEGIN
    PERFORM calsync.enforce_worker_limits('calsync.heartbeat_listener', p_now);
    IF (v_token IS NULL AND NOT v_admin) OR length(coalesce(v_token, repeat('x', 32))) < 32 THEN
        RAISE EXCEPTION 'calsync.heartbeat_listener: worker % presents no usable calsync.worker_token (a secret of at least 32 characters)',
                        p_worker
            USING ERRCODE = 'CS020', CONSTRAINT = 'worker_token_matches',
                  HINT = 'Set calsync.worker_token to a random secret of the worker''s own on each of its connections, then register.';
    END IF;
    v_hash := sha256(convert_to(v_token, 'UTF8'));  -- NULL for an admin without a secret
    FOR attempt IN 1..3 LOOP
        SELECT * INTO v_row FROM calsync.outbox_listeners WHERE worker_id = p_worker FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO calsync.outbox_listeners (worker_id, idle, heartbeat_at, token_hash)
            VALUES (p_worker, p_idle, p_now, v_hash)
            ON CONFLICT (worker_id) DO NOTHING;
            IF FOUND THEN
                RETURN;
            END IF;
            CONTINUE;  -- another session registered this id meanwhile: look again
        END IF;
        IF v_row.token_hash IS DISTINCT FROM v_hash THEN
            IF v_row.heartbeat_at > p_now - calsync.worker_limit('worker_min_dead_after') AND NOT v_admin THEN
                RAISE EXCEPTION 'calsync.heartbeat_listener: worker id % is in use by a live worker (last heartbeat %)',
                                p_worker, v_row.heartbeat_at
                    USING ERRCODE = 'CS021', CONSTRAINT = 'worker_id_taken_while_alive',
                          HINT = 'Each worker needs an id of its own (CALSYNC_WORKER_ID; the default host:pid:random is); an id is free again once its holder has been silent for worker_min_dead_after.';
            END IF;
            UPDATE calsync.outbox_delivery
            SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
                last_error = 'lease taken back: the worker holding it stopped, and its id was registered again',
                last_category = 'NETWORK'
            WHERE status = 'running' AND locked_by = p_worker;
        END IF;
        UPDATE calsync.outbox_listeners SET idle = p_idle, heartbeat_at = p_now, token_hash = v_hash
        WHERE worker_id = p_worker;
        RETURN;
    END LOOP;
    RAISE EXCEPTION 'calsync.heartbeat_listener: worker id % kept changing while it registered', p_worker
        USING ERRCODE = '40001';
END
$$;

COMMENT ON FUNCTION calsync.heartbeat_listener(p_worker text, p_idle boolean, p_now timestamp with time zone) IS 'A worker''s heartbeat and idle flag; registers its id under the session''s calsync.worker_token, refused (CS021) while another secret''s row is alive.';

CREATE FUNCTION calsync.host_id(p_calcom_user_id bigint, p_staff_id uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN p_calcom_user_id IS NOT NULL THEN p_calcom_user_id
                WHEN p_staff_id IS NOT NULL THEN -1 - (uuid_hash_extended(p_staff_id, 0) & 9223372036854775807) END
$$;

COMMENT ON FUNCTION calsync.host_id(p_calcom_user_id bigint, p_staff_id uuid) IS 'The host key of calsync.host_busy_time: the Cal.com user id, else a negative hash of the staff row; NULL without staff.';

CREATE FUNCTION calsync.host_key(p_calcom_user_id bigint, p_staff_id uuid) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- text || text (immutable), not text || bigint (anytextcat is only stable): so the planner inlines it
    SELECT CASE WHEN p_calcom_user_id IS NOT NULL THEN 'calcom_user:' || p_calcom_user_id::text
                WHEN p_staff_id IS NOT NULL THEN 'staff:' || p_staff_id::text END
$$;

COMMENT ON FUNCTION calsync.host_key(p_calcom_user_id bigint, p_staff_id uuid) IS 'calcom_user:<id> when the staff row has a Cal.com user, else staff:<uuid>; NULL without staff.';

CREATE FUNCTION calsync.is_blank(p_text text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    SELECT p_text IS NULL
        OR p_text ~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
$_$;

COMMENT ON FUNCTION calsync.is_blank(p_text text) IS 'NULL, or nothing but Unicode white space (tab, newline, no-break space, ideographic space, ...), not only '' ''.';

CREATE FUNCTION calsync.is_bookable_status(p_status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT p_status IN ('pending', 'confirmed', 'scheduled', 'booked')
$$;

COMMENT ON FUNCTION calsync.is_bookable_status(p_status text) IS 'true for the statuses an appointment is synced to Cal.com in: pending, confirmed, scheduled, booked.';

CREATE FUNCTION calsync.is_sync_loop(p_sync_origin text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(current_setting('calsync.writer', true), '') IN ('worker', 'backfill', 'calcom')
           OR p_sync_origin IS NOT DISTINCT FROM 'calcom'
$$;

COMMENT ON FUNCTION calsync.is_sync_loop(p_sync_origin text) IS 'true when a change must not be synced back: written by the worker or a backfill, applied from Cal.com (calsync.writer = calcom), or marked sync_origin = calcom by this very write.';

CREATE FUNCTION calsync.is_usable_email(p_email text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    SELECT p_email IS NOT NULL AND length(p_email) <= 254
       AND p_email ~ '^(?!\.)(?!.*\.\.)[A-Za-z0-9_+,.''-]*[A-Za-z0-9_+''-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$'
$_$;

COMMENT ON FUNCTION calsync.is_usable_email(p_email text) IS 'An e-mail Cal.com accepts for a booking: its emailSchema rule exactly (the regex, at most 254 characters, nothing trimmed). NULL is not.';

CREATE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    -- the white space of calsync.is_blank, written out: the remediation views inline this function as the reader,
    -- who has no USAGE on schema calsync to call is_blank by name
    SELECT p_phone IS NOT NULL
       AND p_phone !~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
       AND p_phone !~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*anonymous'
$_$;

COMMENT ON FUNCTION calsync.is_usable_phone(p_phone text) IS 'A phone Cal.com accepts: not NULL, not blank (calsync.is_blank: any white space), and not the voice agent''s anonymous_<ts>_<hash> stand-in.';

CREATE FUNCTION calsync.list_calcom_booking(p_event calsync.webhook_event, p_delivery_id bigint, p_now timestamp with time zone DEFAULT now()) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.list_calcom_booking(p_event calsync.webhook_event, p_delivery_id bigint, p_now timestamp with time zone) IS 'List (never import) a Cal.com booking without an appointment, or follow its reschedule or cancel; false when the booking changed is not listed.';

CREATE FUNCTION calsync.pause_rate_limit(p_worker text, p_key_ref text, p_seconds double precision, p_reason text, p_now timestamp with time zone DEFAULT now()) RETURNS timestamp with time zone
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_until timestamptz := p_now + least(greatest(coalesce(p_seconds, 60), 0), 300) * interval '1 second';
BEGIN
    PERFORM calsync.authenticate_worker('calsync.pause_rate_limit', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.pause_rate_limit', p_now);
    INSERT INTO calsync.rate_limits AS r (key_ref, next_slot_at, paused_until, pauses, last_pause_reason, updated_at)
    VALUES (p_key_ref, v_until, v_until, 1, left(p_reason, 200), p_now)
    ON CONFLICT (key_ref) DO UPDATE
        SET paused_until = greatest(r.paused_until, excluded.paused_until),
            next_slot_at = greatest(r.next_slot_at, excluded.paused_until),
            pauses = r.pauses + 1, last_pause_reason = excluded.last_pause_reason, updated_at = p_now
    RETURNING r.paused_until INTO v_until;
    RETURN v_until;
END
$$;

COMMENT ON FUNCTION calsync.pause_rate_limit(p_worker text, p_key_ref text, p_seconds double precision, p_reason text, p_now timestamp with time zone) IS 'Pause a key for every worker (a 429: Cal.com blocks the key), at most 300 s; returns until when.';

CREATE FUNCTION calsync.phase_fits_time_range(p_start timestamp with time zone, p_offset_minutes bigint, p_duration_minutes bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT NOT isfinite(p_start)
           OR (extract(epoch FROM p_start) + 60 * least(p_offset_minutes, p_offset_minutes + p_duration_minutes)
                   >= -210866803200
               AND extract(epoch FROM p_start) + 60 * greatest(p_offset_minutes, p_offset_minutes + p_duration_minutes)
                   < 9224318016000)
$$;

COMMENT ON FUNCTION calsync.phase_fits_time_range(p_start timestamp with time zone, p_offset_minutes bigint, p_duration_minutes bigint) IS 'true when a phase at start + offset lasting duration minutes begins and ends within timestamptz''s range (an infinite start stays infinite).';

CREATE FUNCTION calsync.placeholder_email(p_customer_id bigint) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT 'customer_' || p_customer_id || '@'
           || coalesce((SELECT value FROM calsync.settings WHERE key = 'placeholder_email_domain'), 'placeholder.invalid')
$$;

COMMENT ON FUNCTION calsync.placeholder_email(p_customer_id bigint) IS 'customer_<id>@<domain>, the domain from calsync.settings placeholder_email_domain (default placeholder.invalid).';

CREATE FUNCTION calsync.placeholder_email_backfill_batch(p_after_id bigint, p_batch integer) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_last bigint;
BEGIN
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM customers WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE customers SET email = email
    WHERE id > p_after_id AND id <= v_last
      AND ((NOT calsync.has_email(email) AND NOT calsync.is_usable_phone(phone))
           OR (email IS NOT NULL AND calsync.is_blank(email))
           OR (email = calsync.placeholder_email(id) AND NOT email_is_placeholder));
    RETURN v_last;
END
$$;

COMMENT ON FUNCTION calsync.placeholder_email_backfill_batch(p_after_id bigint, p_batch integer) IS 'One batch of the placeholder-email backfill: customers with id in (after_id, returned id]; NULL when done.';

CREATE FUNCTION calsync.preflight(p_revision text, p_rule text, p_table text, p_description text, p_violators text, p_fix text, p_mode text DEFAULT 'refuse'::text) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_count bigint;
    v_first text;
BEGIN
    EXECUTE format(
        'SELECT count(*), string_agg(id::text, '', '' ORDER BY id) FILTER (WHERE rn <= 10)
           FROM (SELECT v.id, row_number() OVER (ORDER BY v.id) AS rn FROM (%s) AS v) AS s', p_violators)
        INTO v_count, v_first;
    IF v_count = 0 THEN
        RETURN 0;
    END IF;
    IF p_mode = 'new-rows-only' THEN
        EXECUTE format(
            'INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
             SELECT %L, %L, v.id, v.detail, %L FROM (%s) AS v
             ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING',
            p_rule, p_table, 'pre-flight of revision ' || p_revision, p_violators);
        RAISE WARNING 'calsync pre-flight, revision %: % row(s) of % break rule % (%); the rule now covers new rows only and these rows are listed in calsync.integrity_issues (first ids: %)',
            p_revision, v_count, p_table, p_rule, p_description, v_first;
        RETURN v_count;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'CS001',
        MESSAGE = format('calsync pre-flight stopped revision %s: %s row(s) of %s break rule %s (%s)',
                         p_revision, v_count, p_table, p_rule, p_description),
        DETAIL = format('first ids: %s', v_first),
        HINT = p_fix || E'\nOr add the rule for new rows only, listing these rows in calsync.integrity_issues: '
               'rerun with CALSYNC_PREFLIGHT=new-rows-only.';
END
$$;

COMMENT ON FUNCTION calsync.preflight(p_revision text, p_rule text, p_table text, p_description text, p_violators text, p_fix text, p_mode text) IS 'Before a revision adds a rule: refuse (SQLSTATE CS001) with a report of the rows that break it, or in new-rows-only mode list them in calsync.integrity_issues.';

CREATE FUNCTION calsync.prune_sync_history(p_keep interval DEFAULT '30 days'::interval, p_keep_attempts interval DEFAULT '90 days'::interval, p_batch integer DEFAULT 5000, p_now timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_total integer := 0;
    v_n integer;
BEGIN
    PERFORM calsync.enforce_worker_limits('calsync.prune_sync_history', p_now,
                                          p_keep => coalesce(p_keep, interval '0'),
                                          p_keep_attempts => coalesce(p_keep_attempts, interval '0'));
    WITH old AS (
        SELECT outbox_id FROM calsync.outbox_delivery
        WHERE status = 'dead' AND processed_at < p_now - p_keep LIMIT p_batch
    ), gone AS (
        DELETE FROM calsync.outbox_delivery d USING old WHERE d.outbox_id = old.outbox_id RETURNING d.outbox_id
    )
    DELETE FROM calsync.outbox o USING gone WHERE o.id = gone.outbox_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_total := v_total + v_n;
    DELETE FROM calsync.sync_attempts
    WHERE id IN (SELECT id FROM calsync.sync_attempts WHERE created_at < p_now - p_keep_attempts LIMIT p_batch);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_total + v_n;
END
$$;

COMMENT ON FUNCTION calsync.prune_sync_history(p_keep interval, p_keep_attempts interval, p_batch integer, p_now timestamp with time zone) IS 'Delete dead events older than p_keep and sync attempts older than p_keep_attempts, one batch; returns rows deleted.';

CREATE FUNCTION calsync.queue_stats(p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(depth bigint, dead bigint, oldest_pending_s numeric)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
           count(*) FILTER (WHERE d.status = 'dead'),
           coalesce(extract(epoch FROM p_now - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead')), 0)
    FROM calsync.outbox o LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
$$;

COMMENT ON FUNCTION calsync.queue_stats(p_now timestamp with time zone) IS 'Undelivered events, dead events and the oldest undelivered event''s age in seconds (the worker''s metrics).';

CREATE FUNCTION calsync.queue_stats_by_company(p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(company_id bigint, depth bigint, running bigint, dead bigint, held bigint, oldest_pending_s numeric)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT o.company_id,
           count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
           count(*) FILTER (WHERE d.status = 'running'),
           count(*) FILTER (WHERE d.status = 'dead'),
           count(*) FILTER (WHERE d.status = 'retry' AND k.scope = 'key'),
           coalesce(extract(epoch FROM p_now - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead')), 0)
    FROM calsync.outbox o
    LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
    LEFT JOIN remediation.categories k ON k.category = d.last_category
    GROUP BY o.company_id
    ORDER BY o.company_id
$$;

COMMENT ON FUNCTION calsync.queue_stats_by_company(p_now timestamp with time zone) IS 'Per company: undelivered, leased, dead and held (key missing or refused) events, and the oldest undelivered event''s age in seconds.';

CREATE FUNCTION calsync.rate_limit_stats(p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(key_ref text, rate_limit bigint, rate_window_s double precision, granted bigint, delayed bigint, refused bigint, wait_s double precision, pauses bigint, paused_for_s double precision, last_pause_reason text, updated_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT r.key_ref, r.rate_limit, extract(epoch FROM r.rate_window)::double precision, r.granted, r.delayed,
           r.refused, r.wait_s, r.pauses,
           greatest(0, extract(epoch FROM coalesce(r.paused_until, p_now) - p_now))::double precision,
           r.last_pause_reason, r.updated_at
    FROM calsync.rate_limits r
    ORDER BY r.key_ref
$$;

COMMENT ON FUNCTION calsync.rate_limit_stats(p_now timestamp with time zone) IS 'The shared per-key rate limits: slots granted, waits, refusals, 429 pauses and the pause left (key_ref only, never a key).';

CREATE FUNCTION calsync.reap_expired_leases(p_now timestamp with time zone DEFAULT now(), p_dead_after interval DEFAULT '00:01:00'::interval) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.enforce_worker_limits('calsync.reap_expired_leases', p_now,
                                          p_dead_after => coalesce(p_dead_after, interval '0'));
    UPDATE calsync.outbox_delivery d
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'lease taken back: the worker holding it stopped or stalled', last_category = 'NETWORK'
    WHERE d.status = 'running'
      AND (d.locked_until < p_now
           OR NOT EXISTS (SELECT 1 FROM calsync.outbox_listeners l
                          WHERE l.worker_id = d.locked_by AND l.heartbeat_at > p_now - p_dead_after));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

COMMENT ON FUNCTION calsync.reap_expired_leases(p_now timestamp with time zone, p_dead_after interval) IS 'Return events whose lease expired, or whose worker stopped heart-beating, to the queue, due now; returns how many.';

CREATE FUNCTION calsync.receive_webhook(p_event jsonb, p_body text, p_headers jsonb, p_signature text, p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(delivery_id bigint, outcome text, detail text, appointment_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.receive_webhook(p_event jsonb, p_body text, p_headers jsonb, p_signature text, p_now timestamp with time zone) IS 'Store one authentic Cal.com webhook delivery and apply it, exactly once per event (a redelivery is kept as a duplicate and changes nothing).';

CREATE FUNCTION calsync.receive_webhooks(p_deliveries jsonb, p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(ord bigint, delivery_id bigint, outcome text, detail text, appointment_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.receive_webhooks(p_deliveries jsonb, p_now timestamp with time zone) IS 'Store and apply several Cal.com deliveries in one call and one commit, each as calsync.receive_webhook would.';

CREATE FUNCTION calsync.record_contact_finding(p_customer_id bigint, p_field text, p_value text, p_reason text, p_now timestamp with time zone DEFAULT now()) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_field IS DISTINCT FROM 'phone' THEN
        RAISE EXCEPTION 'calsync.record_contact_finding: field % is not reported by the worker', quote_nullable(p_field)
            USING ERRCODE = '22023',
                  HINT = 'Only phone: e-mails are checked in SQL (calsync.is_usable_email).';
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' THEN
        RAISE EXCEPTION 'calsync.record_contact_finding: a finding needs its reason' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = p_customer_id AND c.phone IS NOT DISTINCT FROM p_value) THEN
        RETURN NULL;
    END IF;
    INSERT INTO calsync.integrity_issues AS i (rule, table_name, row_id, detail, found_by, found_at)
    VALUES ('customers_phone_valid_for_calcom', 'customers', p_customer_id, left(p_reason, 500), 'worker', p_now)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL
    DO UPDATE SET detail = excluded.detail, found_at = excluded.found_at
        WHERE i.detail IS DISTINCT FROM excluded.detail  -- the same finding again writes nothing
    RETURNING i.id INTO v_id;
    IF v_id IS NULL THEN
        SELECT i.id INTO v_id FROM calsync.integrity_issues i
        WHERE i.rule = 'customers_phone_valid_for_calcom' AND i.table_name = 'customers' AND i.row_id = p_customer_id
          AND i.resolved_at IS NULL;
    END IF;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION calsync.record_contact_finding(p_customer_id bigint, p_field text, p_value text, p_reason text, p_now timestamp with time zone) IS 'Record that Cal.com would refuse the customer''s phone (p_field ''phone'', p_value as stored, p_reason in words without the value): one open integrity issue customers_phone_valid_for_calcom.';

CREATE FUNCTION calsync.record_refused_calcom_change(p_appointment_id bigint, p_rule text, p_detail text, p_now timestamp with time zone DEFAULT now()) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION calsync.record_refused_calcom_change(p_appointment_id bigint, p_rule text, p_detail text, p_now timestamp with time zone) IS 'Keep a Cal.com change that was not applied: an open integrity issue of the appointment (a second one of the same rule joins it), flagged for manual review.';

CREATE FUNCTION calsync.refresh_host_busy_time(p_appointment_ids bigint[], p_at_commit boolean) RETURNS void
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
BEGIN
    PERFORM 1 FROM appointments a
    WHERE a.id = ANY (p_appointment_ids) AND a.xmin <> pg_current_xact_id()::xid
    ORDER BY a.id FOR NO KEY UPDATE;
    WITH busy AS (
        SELECT i.appointment_id, i.staff_id, calsync.host_id(s.calcom_user_id, i.staff_id) AS host_id,
               range_agg(i.busy) AS busy
        FROM calsync.appointment_busy_intervals i
        JOIN appointments a ON a.id = i.appointment_id
        JOIN staff s ON s.id = i.staff_id
        WHERE i.appointment_id = ANY (p_appointment_ids) AND (i.phase_id IS NOT NULL OR NOT a.is_composite OR p_at_commit)
        GROUP BY i.appointment_id, i.staff_id, s.calcom_user_id
    ), gone AS (
        DELETE FROM calsync.host_busy_time b
        WHERE b.appointment_id = ANY (p_appointment_ids)
          AND NOT EXISTS (SELECT 1 FROM busy x WHERE x.appointment_id = b.appointment_id)
    )
    INSERT INTO calsync.host_busy_time AS b (appointment_id, staff_id, host_id, busy)
    SELECT appointment_id, staff_id, host_id, busy FROM busy
    ON CONFLICT (appointment_id) DO UPDATE
    SET staff_id = EXCLUDED.staff_id, host_id = EXCLUDED.host_id, busy = EXCLUDED.busy
    WHERE (b.staff_id, b.host_id, b.busy) IS DISTINCT FROM (EXCLUDED.staff_id, EXCLUDED.host_id, EXCLUDED.busy);
END
$$;

COMMENT ON FUNCTION calsync.refresh_host_busy_time(p_appointment_ids bigint[], p_at_commit boolean) IS 'Recompute the given appointments'' rows in calsync.host_busy_time from calsync.appointment_busy_intervals.';

CREATE FUNCTION calsync.refuse_phases_outside_time_range(p_appointment_id bigint, p_start timestamp with time zone) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '23514',
        CONSTRAINT = 'appointment_phases_within_time_range',
        TABLE = 'appointment_phases',
        MESSAGE = format('appointment %s starting %s: its phases would end after timestamptz''s last instant (294276-12-31 23:59:59.999999 UTC)',
                         p_appointment_id, p_start),
        HINT = 'Book the appointment at a real time.';
END
$$;

COMMENT ON FUNCTION calsync.refuse_phases_outside_time_range(p_appointment_id bigint, p_start timestamp with time zone) IS 'Rule appointment_phases_within_time_range: raises 23514 for an appointment whose phases would leave timestamptz''s range.';

CREATE FUNCTION calsync.register_listener(p_worker text, p_now timestamp with time zone DEFAULT now()) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT calsync.heartbeat_listener(p_worker, false, p_now)
$$;

COMMENT ON FUNCTION calsync.register_listener(p_worker text, p_now timestamp with time zone) IS 'Register a starting worker (busy) under the session''s calsync.worker_token: its first heartbeat.';

CREATE FUNCTION calsync.release_sync_events(p_worker text, p_outbox_ids uuid[], p_now timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.release_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.release_sync_events', p_now);
    UPDATE calsync.outbox_delivery
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'released by a stopping worker'
    WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

COMMENT ON FUNCTION calsync.release_sync_events(p_worker text, p_outbox_ids uuid[], p_now timestamp with time zone) IS 'Give back events a stopping worker holds; they are due again at once.';

CREATE FUNCTION calsync.release_unknown_leases(p_worker text, p_held uuid[], p_now timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.release_unknown_leases', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.release_unknown_leases', p_now);
    UPDATE calsync.outbox_delivery
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'released: the worker lost the reply to its claim'
    WHERE status = 'running' AND locked_by = p_worker AND NOT (outbox_id = ANY (p_held));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

COMMENT ON FUNCTION calsync.release_unknown_leases(p_worker text, p_held uuid[], p_now timestamp with time zone) IS 'Give back the leases a worker holds but does not know of (a claim whose reply was lost); due at once.';

CREATE FUNCTION calsync.remove_listener(p_worker text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    PERFORM calsync.authenticate_worker('calsync.remove_listener', p_worker);
    DELETE FROM calsync.outbox_listeners WHERE worker_id = p_worker;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION calsync.remove_listener(p_worker text) IS 'Remove the calling worker''s own listener row (it must be that worker: calsync.authenticate_worker); true when there was one.';

CREATE FUNCTION calsync.renew_leases(p_worker text, p_outbox_ids uuid[], p_lease interval, p_now timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.renew_leases', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.renew_leases', p_now, p_lease => coalesce(p_lease, interval '0'));
    UPDATE calsync.outbox_delivery SET locked_until = p_now + p_lease
    WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

COMMENT ON FUNCTION calsync.renew_leases(p_worker text, p_outbox_ids uuid[], p_lease interval, p_now timestamp with time zone) IS 'Extend the leases a worker still holds on events it is working on; returns how many it still holds.';

CREATE FUNCTION calsync.report_key_problem(p_worker text, p_key_ref text, p_category text, p_message text, p_now timestamp with time zone DEFAULT now()) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    PERFORM calsync.authenticate_worker('calsync.report_key_problem', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.report_key_problem', p_now);
    INSERT INTO calsync.key_problems AS k (key_ref, category, message, first_seen, last_seen, reported_by)
    VALUES (p_key_ref, p_category, left(p_message, 2000), p_now, p_now, p_worker)
    ON CONFLICT (key_ref) WHERE resolved_at IS NULL DO UPDATE
        SET category = excluded.category, message = excluded.message, last_seen = excluded.last_seen,
            reported_by = excluded.reported_by;
END
$$;

COMMENT ON FUNCTION calsync.report_key_problem(p_worker text, p_key_ref text, p_category text, p_message text, p_now timestamp with time zone) IS 'Record that Cal.com refuses a key or its base URL (one open row per key_ref); shown in remediation.sync_health.';

CREATE FUNCTION calsync.resolve_contact_finding(p_customer_id bigint, p_field text, p_now timestamp with time zone DEFAULT now()) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF p_field IS DISTINCT FROM 'phone' THEN
        RAISE EXCEPTION 'calsync.resolve_contact_finding: field % is not reported by the worker', quote_nullable(p_field)
            USING ERRCODE = '22023',
                  HINT = 'Only phone: e-mails are checked in SQL (calsync.is_usable_email).';
    END IF;
    UPDATE calsync.integrity_issues
    SET resolved_at = p_now, resolved_by = 'worker', resolution = 'the phone is valid for Cal.com now'
    WHERE rule = 'customers_phone_valid_for_calcom' AND table_name = 'customers' AND row_id = p_customer_id
      AND resolved_at IS NULL;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION calsync.resolve_contact_finding(p_customer_id bigint, p_field text, p_now timestamp with time zone) IS 'Resolve the customer''s open phone finding (customers_phone_valid_for_calcom): the worker found the phone valid. True when one was open.';

CREATE FUNCTION calsync.retry_delay(p_attempts integer, p_base interval DEFAULT '00:00:05'::interval, p_cap interval DEFAULT '01:00:00'::interval) RETURNS interval
    LANGUAGE sql
    AS $$
    SELECT least(p_base * power(2, greatest(p_attempts - 1, 0))::double precision, p_cap) * (0.75 + random() / 2)
$$;

COMMENT ON FUNCTION calsync.retry_delay(p_attempts integer, p_base interval, p_cap interval) IS 'Backoff before the next attempt: exponential in the attempts so far, capped, with +-25% jitter.';

CREATE FUNCTION calsync.retry_parked_webhooks(p_now timestamp with time zone DEFAULT now(), p_waiting_for text DEFAULT NULL::text, p_limit integer DEFAULT 100) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_id bigint;
    v_ids bigint[];
    v_outcome text;
    v_settled integer := 0;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.retry_parked_webhooks: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    -- two queries, not one with a CASE: each is planned on its own partial index (parked_due, parked_waiting);
    -- the CASE's generic plan could use neither and read every parked row on each call
    IF p_waiting_for IS NULL THEN
        v_ids := ARRAY(SELECT d.id FROM calsync.webhook_deliveries d
                       WHERE d.outcome = 'parked' AND d.next_attempt_at <= p_now
                       ORDER BY (d.event).created_at NULLS LAST, d.id
                       LIMIT p_limit
                       FOR UPDATE SKIP LOCKED);
    ELSE
        v_ids := ARRAY(SELECT d.id FROM calsync.webhook_deliveries d
                       WHERE d.outcome = 'parked' AND d.waiting_for = p_waiting_for
                       ORDER BY (d.event).created_at NULLS LAST, d.id
                       LIMIT p_limit
                       FOR UPDATE SKIP LOCKED);
    END IF;
    FOREACH v_id IN ARRAY v_ids
    LOOP
        SELECT r.outcome INTO v_outcome FROM calsync.apply_webhook(v_id, p_now) r;
        IF v_outcome <> 'parked' THEN
            v_settled := v_settled + 1;
        END IF;
    END LOOP;
    RETURN v_settled;
END
$$;

COMMENT ON FUNCTION calsync.retry_parked_webhooks(p_now timestamp with time zone, p_waiting_for text, p_limit integer) IS 'Apply parked Cal.com deliveries again (due ones, or those waiting for one booking uid); returns how many settled.';

CREATE FUNCTION calsync.segment_duration(p_segment jsonb) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN n <= 2147483647 THEN n::int END
    FROM (SELECT coalesce(calsync.segment_number(p_segment, 'durationMin'),
                          calsync.segment_number(p_segment, 'duration_minutes'),
                          calsync.segment_number(p_segment, 'duration')) AS n) AS x
$$;

COMMENT ON FUNCTION calsync.segment_duration(p_segment jsonb) IS 'A segment''s duration: durationMin (live shape), else duration_minutes, else duration (legacy shape); NULL (no positive duration) when the first one given is beyond integer range.';

CREATE FUNCTION calsync.segment_flag(p_segment jsonb, p_key text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    SELECT CASE
        WHEN v ~ '^[ \t\n\r\f\v]*(t|tr|tru|true|y|ye|yes|on|1)[ \t\n\r\f\v]*$' THEN true
        WHEN v ~ '^[ \t\n\r\f\v]*(f|fa|fal|fals|false|n|no|of|off|0)[ \t\n\r\f\v]*$' THEN false
    END
    FROM (SELECT translate(p_segment->>p_key, 'TRUEYSONFAL', 'trueysonfal') AS v) AS x
$_$;

COMMENT ON FUNCTION calsync.segment_flag(p_segment jsonb, p_key text) IS 'A segment''s flag under key p_key: a JSON boolean or a boolean literal as PostgreSQL reads it, else NULL (the caller''s default).';

CREATE FUNCTION calsync.segment_minutes(p_segment jsonb, p_key text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN n <= 2147483647 THEN n::int END FROM (SELECT calsync.segment_number(p_segment, p_key) AS n) AS x
$$;

COMMENT ON FUNCTION calsync.segment_minutes(p_segment jsonb, p_key text) IS 'A segment''s minutes under key p_key (number or numeric string), else NULL; NULL too beyond integer range (segments_problem names that).';

CREATE FUNCTION calsync.segment_number(p_segment jsonb, p_key text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    SELECT CASE
        WHEN m IS NULL THEN NULL
        WHEN length(ltrim(m[1], '0')) > 10 THEN 2147483648
        ELSE least(round((coalesce(nullif(ltrim(m[1], '0'), ''), '0') || '.' || coalesce(left(m[2], 1), '0'))::numeric),
                   2147483648)::bigint
    END
    FROM (SELECT regexp_match(p_segment->>p_key, '^[ \t\n\r\f\v]*([0-9]+)(?:\.([0-9]+))?[ \t\n\r\f\v]*$') AS m) AS x
$_$;

COMMENT ON FUNCTION calsync.segment_number(p_segment jsonb, p_key text) IS 'A segment''s number under key p_key (number or numeric string, rounded half up), else NULL; any value beyond integer range is 2147483648 (never cast, never an error).';

CREATE FUNCTION calsync.segments_problem(p_segments jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN p_segments IS NULL OR p_segments = 'null'::jsonb THEN 'the service has no segments'
        WHEN jsonb_typeof(p_segments) <> 'array' THEN 'the service''s segments are not a JSON array'
        WHEN jsonb_array_length(p_segments) = 0 THEN 'the service''s segments are empty'
        ELSE coalesce(
            (SELECT format('segment %s (%s) %s', coalesce(e.value->>'key', '#' || e.idx), coalesce(e.value->>'name', '?'),
                           CASE WHEN jsonb_typeof(e.value) = 'object'
                                     AND coalesce(calsync.segment_number(e.value, 'durationMin'),
                                                  calsync.segment_number(e.value, 'duration_minutes'),
                                                  calsync.segment_number(e.value, 'duration')) > 2147483647
                                THEN 'has a duration beyond integer range'
                                WHEN jsonb_typeof(e.value) <> 'object' OR coalesce(calsync.segment_duration(e.value), 0) <= 0
                                THEN 'has no positive duration'
                                WHEN calsync.segment_number(e.value, 'order') > 2147483647 THEN 'has an order beyond integer range'
                                ELSE 'has a gap_after beyond integer range' END)
             FROM jsonb_array_elements(p_segments) WITH ORDINALITY AS e(value, idx)
             WHERE jsonb_typeof(e.value) <> 'object' OR coalesce(calsync.segment_duration(e.value), 0) <= 0
                OR calsync.segment_number(e.value, 'order') > 2147483647
                OR calsync.segment_number(e.value, 'gap_after') > 2147483647
             ORDER BY e.idx LIMIT 1),
            (SELECT format('the segments last %s minutes in total, beyond integer range', t.total)
             FROM (SELECT sum(calsync.segment_duration(e.value)::bigint
                              + greatest(coalesce(calsync.segment_minutes(e.value, 'gap_after'), 0), 0)) AS total
                   FROM jsonb_array_elements(p_segments) AS e(value)) AS t
             WHERE t.total > 2147483647))
    END
$$;

COMMENT ON FUNCTION calsync.segments_problem(p_segments jsonb) IS 'NULL when phases can be derived from these segments, else why not (in words): no positive duration, a number beyond integer range, a total beyond integer range.';

CREATE FUNCTION calsync.sync_outcome(p_category text, p_skipped boolean, p_attempts integer, p_max_attempts integer) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT CASE
        WHEN p_skipped THEN 'skipped'
        WHEN p_category = 'OK' THEN 'synced'
        WHEN p_category = 'RATE_LIMITED' THEN 'rate_limited'
        WHEN k.scope = 'key' THEN 'paused'
        WHEN coalesce(k.retryable, false) AND p_attempts < p_max_attempts THEN 'retry'
        ELSE 'dead' END
    FROM (SELECT) AS one LEFT JOIN remediation.categories k ON k.category = p_category
$$;

COMMENT ON FUNCTION calsync.sync_outcome(p_category text, p_skipped boolean, p_attempts integer, p_max_attempts integer) IS 'An attempt''s outcome (skipped, synced, rate_limited, paused, retry, dead) from its category and the attempts so far.';

CREATE FUNCTION calsync.take_rate_slots(p_worker text, p_key_ref text, p_want integer, p_limit integer, p_window interval, p_max_ahead interval, p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(granted integer, first_in_s double precision, spacing_s double precision, paused_for_s double precision)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_spacing interval := p_window / greatest(p_limit, 1);
    v_row calsync.rate_limits;
    v_start timestamptz;
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.take_rate_slots', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.take_rate_slots', p_now);
    INSERT INTO calsync.rate_limits AS r (key_ref, next_slot_at, rate_limit, rate_window, updated_at)
    VALUES (p_key_ref, p_now, p_limit, p_window, p_now)
    ON CONFLICT (key_ref) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING * INTO v_row;
    v_start := greatest(p_now - v_spacing, v_row.next_slot_at, coalesce(v_row.paused_until, p_now - v_spacing));
    v_n := CASE WHEN v_start > p_now + p_max_ahead THEN 0
                ELSE least(greatest(p_want, 0),
                           1 + floor(extract(epoch FROM p_now + p_max_ahead - v_start) / extract(epoch FROM v_spacing))::int)
           END;
    UPDATE calsync.rate_limits r
    SET next_slot_at = CASE WHEN v_n > 0 THEN v_start + v_n * v_spacing ELSE r.next_slot_at END,
        rate_limit = p_limit, rate_window = p_window,
        granted = r.granted + v_n,
        delayed = r.delayed + CASE WHEN v_n > 0 AND v_start > p_now THEN 1 ELSE 0 END,
        refused = r.refused + CASE WHEN v_n = 0 AND p_want > 0 THEN 1 ELSE 0 END,
        wait_s = r.wait_s + CASE WHEN v_n > 0 THEN greatest(0, extract(epoch FROM v_start - p_now)) ELSE 0 END
    WHERE r.key_ref = p_key_ref;
    RETURN QUERY SELECT v_n, extract(epoch FROM v_start - p_now)::double precision,
                        extract(epoch FROM v_spacing)::double precision,
                        greatest(0, extract(epoch FROM coalesce(v_row.paused_until, p_now) - p_now))::double precision;
END
$$;

COMMENT ON FUNCTION calsync.take_rate_slots(p_worker text, p_key_ref text, p_want integer, p_limit integer, p_window interval, p_max_ahead interval, p_now timestamp with time zone) IS 'Hand out up to p_want request slots of a key''s shared schedule (p_limit per p_window for all workers), none beyond p_max_ahead; one call per batch of requests.';

CREATE FUNCTION calsync.tg_appointment_phases__delete_host_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM old_phases), false);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointment_phases__delete_host_time() IS 'Statement trigger appointment_phases_reserve_host_time_delete: deleted phases free their time.';

CREATE FUNCTION calsync.tg_appointment_phases__enqueue_sync() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

COMMENT ON FUNCTION calsync.tg_appointment_phases__enqueue_sync() IS 'Statement triggers appointment_phases_enqueue_sync_*: phases changed on their own reschedule their appointment.';

CREATE FUNCTION calsync.tg_appointment_phases__insert_host_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM new_phases), false);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointment_phases__insert_host_time() IS 'Statement trigger appointment_phases_reserve_host_time_insert: new phases reserve their host''s time.';

CREATE FUNCTION calsync.tg_appointment_phases__update_host_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_ids bigint[];
BEGIN
    SELECT array_agg(DISTINCT x.appointment_id) INTO v_ids
    FROM old_phases o FULL JOIN new_phases n ON n.id = o.id
    CROSS JOIN LATERAL (VALUES (o.appointment_id), (n.appointment_id)) AS x(appointment_id)
    WHERE x.appointment_id IS NOT NULL
      AND (o.id IS NULL OR n.id IS NULL OR n.appointment_id IS DISTINCT FROM o.appointment_id
           OR ((n.staff_required OR o.staff_required)
               AND (n.staff_required, n.start_time, n.end_time) IS DISTINCT FROM (o.staff_required, o.start_time, o.end_time)));
    IF v_ids IS NOT NULL THEN
        PERFORM calsync.refresh_host_busy_time(v_ids, false);
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointment_phases__update_host_time() IS 'Statement trigger appointment_phases_reserve_host_time_update: keep the busy time of appointments whose phases changed current.';

CREATE FUNCTION calsync.tg_appointments__check_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.version IS DISTINCT FROM OLD.version THEN
        RAISE EXCEPTION USING
            ERRCODE = '40001',
            CONSTRAINT = 'appointments_version_check',
            MESSAGE = format('appointment %s was changed by someone else: your update is based on version %s, the row is at version %s',
                             OLD.id, NEW.version, OLD.version),
            HINT = 'Reload the appointment and apply your change again (or leave version out of the UPDATE to skip the check).';
    END IF;
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__check_version() IS 'Trigger appointments_version_check: refuses a stale version with SQLSTATE 40001, else increments version.';

CREATE FUNCTION calsync.tg_appointments__derive_phases_at_commit() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- the common case (it has its phases) in one query, without calling the function
    IF NOT EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        PERFORM calsync.create_missing_phases(NEW.id, 'trigger appointments_composite_has_phases');
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__derive_phases_at_commit() IS 'Deferred trigger appointments_composite_has_phases: at commit, a live composite appointment without phases gets them (or is flagged).';

CREATE FUNCTION calsync.tg_appointments__enqueue_sync() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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
    -- the row calsync.enqueue_sync writes, inserted here (the app's every booking and move runs this: a function
    -- call less), with the company the row already has (outbox_record_company then has nothing to look up)
    INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload, company_id)
    VALUES ('appointment', NEW.id::text, v_type, jsonb_build_object(
        'appointment_id', NEW.id, 'status', NEW.status, 'starts_at', NEW.starts_at, 'ends_at', NEW.ends_at,
        'staff_id', NEW.staff_id, 'service_id', NEW.service_id, 'customer_id', NEW.customer_id,
        'calcom_v2_booking_uid', NEW.calcom_v2_booking_uid), NEW.company_id);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__enqueue_sync() IS 'Trigger appointments_enqueue_sync: create, cancel and reschedule events into calsync.outbox, in the booking''s transaction.';

CREATE FUNCTION calsync.tg_appointments__keep_phases_in_step() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.service_id IS DISTINCT FROM OLD.service_id THEN
        WITH gone AS (
            DELETE FROM appointment_phases WHERE appointment_id = NEW.id
            RETURNING id, appointment_id, sequence_order, phase_type, segment_key, segment_name, staff_required,
                      start_time, end_time, calcom_booking_id, calcom_booking_uid, calcom_sync_status
        )
        INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                               segment_name, staff_required, start_time, end_time,
                                               calcom_booking_id, calcom_booking_uid, calcom_sync_status, reason)
        SELECT gone.*, format('service changed from %s to %s', OLD.service_id, NEW.service_id) FROM gone;
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at
          -- an appointment without phases (every simple one) has nothing to shift: one index probe, and no
          -- UPDATE whose statement triggers would run for no row
          AND EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        IF EXISTS (SELECT 1 FROM appointment_phases
                   WHERE appointment_id = NEW.id
                     AND NOT calsync.phase_fits_time_range(NEW.starts_at, start_offset_minutes, duration_minutes)) THEN
            PERFORM calsync.refuse_phases_outside_time_range(NEW.id, NEW.starts_at);
        END IF;
        UPDATE appointment_phases
        SET start_time = NEW.starts_at + make_interval(mins => start_offset_minutes),
            end_time = NEW.starts_at + make_interval(mins => start_offset_minutes) + make_interval(mins => duration_minutes),
            updated_at = now()
        WHERE appointment_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__keep_phases_in_step() IS 'Trigger appointments_phases_follow_appointment: a reschedule shifts the phases, a service change supersedes them.';

CREATE FUNCTION calsync.tg_appointments__match_composite() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_composite boolean;
    v_name text;
BEGIN
    IF NEW.service_id IS NULL THEN
        RETURN NEW;  -- appointments_service_required refuses live rows without a service
    END IF;
    SELECT composite, name INTO v_composite, v_name FROM services WHERE id = NEW.service_id;
    IF TG_OP = 'INSERT' OR NEW.service_id IS DISTINCT FROM OLD.service_id THEN
        NEW.is_composite := coalesce(v_composite, false);
    ELSIF NEW.is_composite IS DISTINCT FROM coalesce(v_composite, false) THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'appointments_composite_matches_service',
            MESSAGE = format('appointment %s: is_composite = %s contradicts service %s (%s), whose composite = %s',
                             NEW.id, NEW.is_composite, NEW.service_id, v_name, v_composite),
            HINT = 'is_composite follows the service: leave it out of the UPDATE, or change service_id.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__match_composite() IS 'Trigger appointments_composite_matches_service: is_composite is copied from the service; a contradicting update is refused (23514).';

CREATE FUNCTION calsync.tg_appointments__release_host_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM calsync.host_busy_time b USING old_appointments o WHERE b.appointment_id = o.id;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__release_host_time() IS 'Statement trigger appointments_release_host_time: deleted appointments free their busy time.';

CREATE FUNCTION calsync.tg_appointments__reserve_host_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO calsync.host_busy_time (appointment_id, staff_id, host_id, busy)
    SELECT NEW.id, NEW.staff_id, calsync.host_id(s.calcom_user_id, NEW.staff_id),
           tstzmultirange(tstzrange(NEW.starts_at, NEW.ends_at, '[)'))
    FROM staff s WHERE s.id = NEW.staff_id;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time() IS 'Trigger appointments_reserve_host_time: a new simple appointment reserves its host''s time.';

CREATE FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        PERFORM calsync.refresh_host_busy_time(ARRAY[NEW.id], true);
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() IS 'Deferred trigger appointments_reserve_host_time_at_commit: a composite appointment without phases is busy for its whole time.';

CREATE FUNCTION calsync.tg_appointments__update_host_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.staff_id IS NOT DISTINCT FROM OLD.staff_id AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.service_id IS NOT DISTINCT FROM OLD.service_id THEN
        IF NOT NEW.is_composite AND NEW.ends_at > NEW.starts_at THEN
            UPDATE calsync.host_busy_time SET busy = tstzmultirange(tstzrange(NEW.starts_at, NEW.ends_at, '[)'))
            WHERE appointment_id = NEW.id
              AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = NEW.id);
            IF FOUND THEN
                RETURN NULL;
            END IF;
        END IF;
        IF EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = NEW.id) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM calsync.refresh_host_busy_time(ARRAY[NEW.id], false);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_appointments__update_host_time() IS 'Trigger appointments_reserve_host_time_on_change: keep the busy time of a changed appointment current.';

CREATE FUNCTION calsync.tg_customers__fill_placeholder_email() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_placeholder text := calsync.placeholder_email(NEW.id);
BEGIN
    IF NEW.email IS NOT NULL AND calsync.is_blank(NEW.email) THEN
        NEW.email := NULL;
    END IF;
    IF calsync.has_email(NEW.email) THEN  -- kept, whether Cal.com accepts it or not
        NEW.email_is_placeholder := (NEW.email = v_placeholder)
            OR (TG_OP = 'UPDATE' AND OLD.email_is_placeholder AND NEW.email = OLD.email);
    ELSIF calsync.is_usable_phone(NEW.phone) THEN
        NEW.email_is_placeholder := false;
    ELSE
        NEW.email := v_placeholder;
        NEW.email_is_placeholder := true;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION calsync.tg_customers__fill_placeholder_email() IS 'Trigger customers_fill_placeholder_email: no e-mail at all (NULL or blank) and no usable phone gives customer_<id>@<domain>; any other e-mail is kept.';

CREATE FUNCTION calsync.tg_customers__resolve_changed_contact_findings() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE calsync.integrity_issues
    SET resolved_at = now(), resolved_by = 'customers_resolve_changed_contact_findings',
        resolution = 'the phone changed: checked again at the next sync'
    WHERE rule = 'customers_phone_valid_for_calcom' AND table_name = 'customers' AND row_id = NEW.id
      AND resolved_at IS NULL;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_customers__resolve_changed_contact_findings() IS 'Trigger customers_resolve_changed_contact_findings: a changed phone resolves its open phone finding.';

CREATE FUNCTION calsync.tg_outbox__record_company() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.company_id IS NULL AND NEW.aggregatetype = 'appointment' THEN
        NEW.company_id := (SELECT a.company_id FROM appointments a WHERE a.id = NEW.aggregateid::bigint);
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION calsync.tg_outbox__record_company() IS 'Trigger outbox_record_company: an event carries its appointment''s company (the claim''s fair share).';

CREATE FUNCTION calsync.tg_outbox__wake_worker() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM calsync.outbox_listeners WHERE idle) THEN
        PERFORM pg_notify('calsync_outbox', '');
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_outbox__wake_worker() IS 'Statement trigger outbox_wake_worker: NOTIFY calsync_outbox, once per statement and only when a worker is idle.';

CREATE FUNCTION calsync.tg_services__keep_segments_while_booked() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_count bigint;
    v_first bigint;
    v_problem text;
BEGIN
    IF NOT OLD.composite AND NOT NEW.composite THEN
        RETURN NEW;
    END IF;
    v_problem := CASE WHEN NEW.composite THEN calsync.segments_problem(NEW.segments) END;
    IF OLD.composite AND NEW.composite AND v_problem IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT count(*), min(id) INTO v_count, v_first
    FROM appointments
    WHERE service_id = OLD.id AND status NOT IN ('cancelled', 'no_show') AND ends_at > now();
    IF v_count > 0 AND NOT OLD.composite THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is simple and booked by %s upcoming appointment(s) (first: #%s): it cannot become composite',
                             OLD.id, OLD.name, v_count, v_first),
            HINT = 'Those bookings were made without phases: create a new composite service for new bookings, or move or cancel them first.';
    ELSIF v_count > 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = '23514',
            CONSTRAINT = 'services_keep_segments_while_booked',
            MESSAGE = format('service %s (%s) is composite and booked by %s upcoming appointment(s) (first: #%s): %s',
                             OLD.id, OLD.name, v_count, v_first,
                             CASE WHEN NOT NEW.composite THEN 'it cannot stop being composite'
                                  ELSE 'its segments cannot be replaced by unusable ones (' || v_problem || ')' END),
            HINT = 'Keep the segments (an import that does not carry them must leave the column out), or move or cancel those appointments first.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION calsync.tg_services__keep_segments_while_booked() IS 'Trigger services_keep_segments_while_booked: while upcoming appointments use a service, it keeps composite as it is and a composite keeps usable segments.';

CREATE FUNCTION calsync.tg_staff__rekey_host_busy_time() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE calsync.host_busy_time SET host_id = calsync.host_id(NEW.calcom_user_id, NEW.id)
    WHERE host_id = calsync.host_id(OLD.calcom_user_id, OLD.id) AND staff_id = NEW.id;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION calsync.tg_staff__rekey_host_busy_time() IS 'Trigger staff_rekey_host_busy_time: a staff row''s new Cal.com user makes its bookings that user''s busy time.';

CREATE FUNCTION calsync.time_ordered_uuid() RETURNS uuid
    LANGUAGE sql PARALLEL SAFE
    AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                                          PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                                                            FROM 3)
                                          FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

COMMENT ON FUNCTION calsync.time_ordered_uuid() IS 'A time-ordered UUID (version 7 layout: 48 bits of Unix milliseconds, then random bits): the outbox''s ids.';

CREATE FUNCTION calsync.webhook_setting(p_key text) RETURNS interval
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'webhook_park_base' THEN interval '2 seconds'
                               WHEN 'webhook_park_cap' THEN interval '5 minutes'
                               WHEN 'webhook_park_max' THEN interval '1 day' END);
END
$$;

COMMENT ON FUNCTION calsync.webhook_setting(p_key text) IS 'An interval setting of the webhook receiver (calsync.settings), else its default.';

CREATE FUNCTION calsync.worker_limit(p_key text) RETURNS interval
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'worker_max_lease' THEN interval '1 hour'
                               WHEN 'worker_min_keep_dead' THEN interval '7 days'
                               WHEN 'worker_min_keep_attempts' THEN interval '30 days'
                               WHEN 'worker_min_dead_after' THEN interval '30 seconds' END)
$$;

COMMENT ON FUNCTION calsync.worker_limit(p_key text) IS 'A limit calsync_worker is held to: calsync.settings value of p_key, else its default (worker_max_lease 1 hour, worker_min_keep_dead 7 days, worker_min_keep_attempts 30 days, worker_min_dead_after 30 seconds).';

CREATE FUNCTION calsync.written_by_this_transaction(p_xmin xid) RETURNS boolean
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    v_top bigint := pg_current_xact_id_if_assigned()::text::bigint;
    v_later bigint;
    v_xid xid8;
BEGIN
    IF v_top IS NULL OR p_xmin IS NULL THEN
        RETURN false;
    ELSIF p_xmin = (v_top::text)::xid8::xid THEN
        RETURN true;
    END IF;
    v_later := (p_xmin::text::bigint - (v_top & 4294967295)) & 4294967295;
    IF v_later >= 2147483648 THEN
        RETURN false;
    END IF;
    v_xid := (v_top + v_later)::text::xid8;
    IF v_xid < pg_snapshot_xmax(pg_current_snapshot()) THEN
        RETURN pg_xact_status(v_xid) IS NOT DISTINCT FROM 'in progress';  -- assigned before the snapshot: no error
    END IF;
    BEGIN
        RETURN pg_xact_status(v_xid) IS NOT DISTINCT FROM 'in progress';
    EXCEPTION WHEN invalid_parameter_value THEN  -- "transaction ID … is in the future": a frozen row's raw xmin
        RETURN false;
    END;
END
$$;

COMMENT ON FUNCTION calsync.written_by_this_transaction(p_xmin xid) IS 'true when a row with this xmin was written by the current transaction, at its top level or under a savepoint that was not rolled back.';

CREATE FUNCTION remediation.apply_appointment_image(p_id bigint, p_image jsonb) RETURNS void
    LANGUAGE sql
    AS $$
    UPDATE appointments a SET
        status = CASE WHEN p_image ? 'status' THEN p_image->>'status' ELSE a.status END,
        calcom_sync_status = CASE WHEN p_image ? 'calcom_sync_status' THEN p_image->>'calcom_sync_status' ELSE a.calcom_sync_status END,
        requires_manual_review = CASE WHEN p_image ? 'requires_manual_review' THEN (p_image->>'requires_manual_review')::boolean ELSE a.requires_manual_review END,
        manual_review_flagged_at = CASE WHEN p_image ? 'manual_review_flagged_at' THEN (p_image->>'manual_review_flagged_at')::timestamptz ELSE a.manual_review_flagged_at END,
        sync_error_code = CASE WHEN p_image ? 'sync_error_code' THEN p_image->>'sync_error_code' ELSE a.sync_error_code END,
        sync_error_message = CASE WHEN p_image ? 'sync_error_message' THEN p_image->>'sync_error_message' ELSE a.sync_error_message END,
        calcom_booking_id = CASE WHEN p_image ? 'calcom_booking_id' THEN (p_image->>'calcom_booking_id')::bigint ELSE a.calcom_booking_id END,
        calcom_v2_booking_id = CASE WHEN p_image ? 'calcom_v2_booking_id' THEN p_image->>'calcom_v2_booking_id' ELSE a.calcom_v2_booking_id END,
        calcom_v2_booking_uid = CASE WHEN p_image ? 'calcom_v2_booking_uid' THEN p_image->>'calcom_v2_booking_uid' ELSE a.calcom_v2_booking_uid END,
        updated_at = now()
    WHERE a.id = p_id
$$;

COMMENT ON FUNCTION remediation.apply_appointment_image(p_id bigint, p_image jsonb) IS 'Set the appointment columns present in an image (runbook steps and undo).';

CREATE FUNCTION remediation.appointment_image(p_id bigint) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
    SELECT jsonb_build_object(
        'status', status, 'calcom_sync_status', calcom_sync_status, 'requires_manual_review', requires_manual_review,
        'manual_review_flagged_at', manual_review_flagged_at, 'sync_error_code', sync_error_code,
        'sync_error_message', sync_error_message, 'calcom_booking_id', calcom_booking_id,
        'calcom_v2_booking_id', calcom_v2_booking_id, 'calcom_v2_booking_uid', calcom_v2_booking_uid)
    FROM appointments WHERE id = p_id
$$;

COMMENT ON FUNCTION remediation.appointment_image(p_id bigint) IS 'The appointment columns the runbook changes, as JSON (for remediation.log).';

CREATE FUNCTION remediation.backfill_failure_diagnoses(p_after_id bigint, p_batch integer) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_ids bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id) INTO v_ids
    FROM (SELECT a.id FROM appointments a
          WHERE (a.calcom_sync_status = 'failed' OR a.requires_manual_review) AND a.id > p_after_id
          ORDER BY a.id LIMIT p_batch) AS batch;
    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM remediation.diagnose_failures(v_ids);
    RETURN v_ids[cardinality(v_ids)];
END
$$;

COMMENT ON FUNCTION remediation.backfill_failure_diagnoses(p_after_id bigint, p_batch integer) IS 'Diagnose existing failures in batches (revision 0005); returns the last id done, NULL when there is none left.';

CREATE FUNCTION remediation.backfill_placeholder_emails(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_id bigint;
    v_before jsonb;
BEGIN
    FOR v_id IN SELECT c.id FROM customers c
                WHERE NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone)
                  AND c.deleted_at IS NULL ORDER BY c.id LIMIT p_limit
    LOOP
        SELECT jsonb_build_object('email', c.email, 'email_is_placeholder', c.email_is_placeholder) INTO v_before
        FROM customers c WHERE c.id = v_id AND NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone)
        FOR UPDATE;
        CONTINUE WHEN v_before IS NULL;  -- fixed meanwhile
        IF p_dry_run THEN
            RETURN NEXT ('placeholder_emails', 'customers', v_id, 'update', v_before,
                         jsonb_build_object('email', calsync.placeholder_email(v_id), 'email_is_placeholder', true))::remediation.change;
            CONTINUE;
        END IF;
        UPDATE customers SET email = calsync.placeholder_email(id), email_is_placeholder = true, updated_at = now()
        WHERE id = v_id;
        RETURN NEXT remediation.record(p_run_id, 'placeholder_emails', p_reason, 'customers', v_id, 'update', v_before,
            (SELECT jsonb_build_object('email', email, 'email_is_placeholder', email_is_placeholder) FROM customers WHERE id = v_id));
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.backfill_placeholder_emails(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer) IS 'Runbook step placeholder_emails (incident fix 1): customers with no usable e-mail or phone get customer_<id>@<domain>.';

CREATE FUNCTION remediation.blocking_cause(p_appointment_id bigint) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT d.blocking_cause FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;

COMMENT ON FUNCTION remediation.blocking_cause(p_appointment_id bigint) IS 'What in the data keeps the appointment from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL (remediation.sync_diagnosis).';

CREATE FUNCTION remediation.cancel_invalid_appointments(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    r record;
    v_change remediation.change;
BEGIN
    FOR r IN SELECT a.id, CASE WHEN a.service_id IS NULL THEN 'service missing' ELSE 'staff missing' END AS why,
                    (a.calcom_booking_id IS NOT NULL OR a.calcom_v2_booking_uid IS NOT NULL) AS booked
             FROM appointments a
             WHERE a.status NOT IN ('cancelled', 'no_show') AND (a.service_id IS NULL OR (a.is_composite AND a.staff_id IS NULL))
             ORDER BY a.id LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'invalid', p_reason, r.id,
            jsonb_build_object('status', 'cancelled', 'requires_manual_review', false, 'manual_review_flagged_at', NULL,
                               'sync_error_code', NULL,
                               'sync_error_message', 'Invalid appointment - ' || r.why || ': cancelled by remediation',
                               -- nothing at Cal.com: nothing left to sync; else the worker cancels the booking
                               'calcom_sync_status', CASE WHEN r.booked THEN 'pending' ELSE 'synced' END),
            p_dry_run, 'a.status NOT IN (''cancelled'', ''no_show'') AND (a.service_id IS NULL OR (a.is_composite AND a.staff_id IS NULL))');
        IF v_change IS NOT NULL THEN
            RETURN NEXT v_change;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.cancel_invalid_appointments(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer) IS 'Runbook step invalid (incident fix 4): cancel live appointments without a service, or composite ones without staff.';

CREATE FUNCTION remediation.change_appointment(p_run_id uuid, p_step text, p_reason text, p_id bigint, p_changes jsonb, p_dry_run boolean, p_still text) RETURNS remediation.change
    LANGUAGE plpgsql
    AS $_$
DECLARE
    v_ok boolean;
    v_before jsonb;
BEGIN
    EXECUTE format('SELECT %s FROM appointments a WHERE a.id = $1 FOR UPDATE', p_still) INTO v_ok USING p_id;
    IF NOT coalesce(v_ok, false) THEN
        RETURN NULL;  -- changed meanwhile: nothing to do any more
    END IF;
    v_before := remediation.appointment_image(p_id);
    IF p_dry_run THEN
        RETURN (p_step, 'appointments', p_id, 'update', v_before, v_before || p_changes)::remediation.change;
    END IF;
    PERFORM remediation.apply_appointment_image(p_id, p_changes);
    RETURN remediation.record(p_run_id, p_step, p_reason, 'appointments', p_id, 'update', v_before,
                              remediation.appointment_image(p_id));
END
$_$;

COMMENT ON FUNCTION remediation.change_appointment(p_run_id uuid, p_step text, p_reason text, p_id bigint, p_changes jsonb, p_dry_run boolean, p_still text) IS 'Lock an appointment, re-check the step''s condition, apply the change and log before/after (or only report it in a dry run).';

CREATE TABLE calsync.integrity_issues (
    id bigint NOT NULL,
    rule text NOT NULL,
    table_name text NOT NULL,
    row_id bigint NOT NULL,
    detail text NOT NULL,
    found_by text NOT NULL,
    found_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved_at timestamp with time zone,
    resolved_by text,
    resolution text,
    CONSTRAINT integrity_issues_resolution_needs_time CHECK (((resolved_at IS NULL) = (resolution IS NULL)))
);

COMMENT ON TABLE calsync.integrity_issues IS 'Rows known to break a rule: listed by a pre-flight (new-rows-only mode), by a rule that could not repair a row, or by remediation. Resolved, never deleted.';

COMMENT ON COLUMN calsync.integrity_issues.rule IS 'name of the rule (constraint, index or trigger) the row breaks';

COMMENT ON COLUMN calsync.integrity_issues.row_id IS 'id of the offending row in table_name';

COMMENT ON COLUMN calsync.integrity_issues.detail IS 'what is wrong with the row, in words';

COMMENT ON COLUMN calsync.integrity_issues.found_by IS 'what found it (a revision''s pre-flight, a trigger, a runbook step)';

COMMENT ON COLUMN calsync.integrity_issues.resolved_at IS 'when it was resolved; NULL while open';

CREATE TABLE public.appointment_phases (
    id bigint NOT NULL,
    appointment_id bigint NOT NULL,
    phase_type character varying(20) NOT NULL,
    segment_name character varying(255),
    segment_key character varying(50),
    sequence_order integer,
    start_offset_minutes integer DEFAULT 0 NOT NULL,
    duration_minutes integer NOT NULL,
    staff_required boolean DEFAULT true NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    calcom_booking_id bigint,
    calcom_booking_uid character varying(255),
    calcom_sync_status character varying(20) DEFAULT 'pending'::character varying NOT NULL,
    sync_error_message text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT appointment_phases_phase_type_check CHECK (((phase_type)::text = ANY ((ARRAY['initial'::character varying, 'processing'::character varying, 'final'::character varying])::text[]))),
    CONSTRAINT appointment_phases_sequence_required CHECK ((sequence_order IS NOT NULL))
);

CREATE TABLE public.appointments (
    id bigint NOT NULL,
    company_id bigint NOT NULL,
    branch_id uuid,
    customer_id bigint NOT NULL,
    service_id bigint,
    staff_id uuid,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone,
    status character varying(255) DEFAULT 'pending'::character varying NOT NULL,
    booking_timezone character varying(64) DEFAULT 'Europe/Berlin'::character varying NOT NULL,
    source character varying(255),
    sync_origin character varying(20),
    calcom_booking_id bigint,
    calcom_v2_booking_id character varying(255),
    calcom_v2_booking_uid character varying(50),
    calcom_sync_status character varying(32) DEFAULT 'pending'::character varying NOT NULL,
    sync_error_message text,
    sync_error_code character varying(50),
    sync_attempt_count smallint DEFAULT 0 NOT NULL,
    last_sync_attempt_at timestamp with time zone,
    requires_manual_review boolean DEFAULT false NOT NULL,
    manual_review_flagged_at timestamp with time zone,
    idempotency_key character varying(36),
    version integer DEFAULT 1 NOT NULL,
    is_composite boolean DEFAULT false NOT NULL,
    metadata jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    sync_error_detail jsonb,
    CONSTRAINT appointments_calcom_sync_status_known CHECK (((calcom_sync_status)::text = ANY ((ARRAY['synced'::character varying, 'pending'::character varying, 'failed'::character varying, 'orphaned_local'::character varying, 'orphaned_calcom'::character varying, 'verification_pending'::character varying])::text[]))),
    CONSTRAINT appointments_ends_after_start CHECK ((((ends_at IS NOT NULL) AND (ends_at > starts_at)) OR (NOT ((status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[]))))),
    CONSTRAINT appointments_service_required CHECK (((service_id IS NOT NULL) OR (NOT ((status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[]))))),
    CONSTRAINT appointments_status_known CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'confirmed'::character varying, 'scheduled'::character varying, 'booked'::character varying, 'in_progress'::character varying, 'completed'::character varying, 'cancelled'::character varying, 'no_show'::character varying])::text[])))
);

COMMENT ON COLUMN public.appointments.sync_error_message IS 'The last sync error in full (no length limit since calsync 0003).';

COMMENT ON COLUMN public.appointments.sync_error_detail IS 'The last sync error as structure: status, code, message, category, request id.';

COMMENT ON CONSTRAINT appointments_calcom_sync_status_known ON public.appointments IS 'calcom_sync_status must be one of synced, pending, failed, orphaned_local, orphaned_calcom, verification_pending.';

COMMENT ON CONSTRAINT appointments_ends_after_start ON public.appointments IS 'A live appointment needs ends_at after starts_at: set ends_at = starts_at + the service duration.';

COMMENT ON CONSTRAINT appointments_service_required ON public.appointments IS 'A live appointment (not cancelled/no_show) needs a service: give it one, or cancel it.';

COMMENT ON CONSTRAINT appointments_status_known ON public.appointments IS 'status must be one of pending, confirmed, scheduled, booked, in_progress, completed, cancelled, no_show.';

CREATE TABLE public.services (
    id bigint NOT NULL,
    company_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    duration_minutes integer DEFAULT 60 NOT NULL,
    composite boolean DEFAULT false NOT NULL,
    segments jsonb,
    calcom_event_type_id bigint
);

CREATE VIEW remediation.unsettled_appointments AS
 SELECT a.id AS appointment_id
   FROM public.appointments a
  WHERE ((a.calcom_sync_status)::text = ANY ((ARRAY['failed'::character varying, 'pending'::character varying])::text[]))
UNION
 SELECT a.id AS appointment_id
   FROM public.appointments a
  WHERE a.requires_manual_review
UNION
 SELECT i.row_id AS appointment_id
   FROM calsync.integrity_issues i
  WHERE ((i.table_name = 'appointments'::text) AND (i.resolved_at IS NULL));

COMMENT ON VIEW remediation.unsettled_appointments IS 'Appointments not settled: sync pending or failed, flagged for manual review, or in an open integrity issue. The findings views start from these.';

COMMENT ON COLUMN remediation.unsettled_appointments.appointment_id IS 'the appointment';

CREATE VIEW calsync.remediation_composites_without_phases AS
 SELECT a.id AS appointment_id,
    a.service_id,
    s.name AS service_name,
    a.starts_at,
    a.status,
    a.staff_id,
    calsync.segments_problem(s.segments) AS segments_problem
   FROM ((remediation.unsettled_appointments u
     CROSS JOIN LATERAL ( SELECT x.id,
            x.service_id,
            x.starts_at,
            x.status,
            x.staff_id,
            x.is_composite
           FROM public.appointments x
          WHERE (x.id = u.appointment_id)
         OFFSET 0) a)
     JOIN public.services s ON ((s.id = a.service_id)))
  WHERE (a.is_composite AND ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])) AND (a.starts_at >= (now() - '30 days'::interval)) AND (NOT (EXISTS ( SELECT 1
           FROM public.appointment_phases p
          WHERE (p.appointment_id = a.id)))));

COMMENT ON VIEW calsync.remediation_composites_without_phases IS 'The query of remediation.composites_without_phases, read through remediation.composites_without_phases_without_jit().';

CREATE FUNCTION remediation.composites_without_phases_without_jit() RETURNS SETOF calsync.remediation_composites_without_phases
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    AS $$
    SELECT * FROM calsync.remediation_composites_without_phases
$$;

COMMENT ON FUNCTION remediation.composites_without_phases_without_jit() IS 'The rows of remediation.composites_without_phases, planned without JIT (see the head of this file).';

CREATE FUNCTION remediation.create_missing_phases(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_id bigint;
    v_before jsonb;
    v_after jsonb;
    v_phase record;
BEGIN
    FOR v_id IN SELECT a.id FROM appointments a
                WHERE a.is_composite AND a.status NOT IN ('cancelled', 'no_show')
                  AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
                  AND NOT EXISTS (SELECT 1 FROM calsync.integrity_issues i  -- flagged already: unusable segments
                                  WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments'
                                    AND i.row_id = a.id AND i.resolved_at IS NULL)
                ORDER BY a.id LIMIT p_limit
    LOOP
        v_before := remediation.appointment_image(v_id);
        IF p_dry_run THEN
            RETURN NEXT ('missing_phases', 'appointments', v_id, 'update', v_before,
                         v_before || jsonb_build_object('phases', (SELECT jsonb_agg(to_jsonb(d)) FROM appointments a
                             JOIN services s ON s.id = a.service_id, calsync.derive_phases(s.segments) d WHERE a.id = v_id)))::remediation.change;
            CONTINUE;
        END IF;
        CONTINUE WHEN calsync.create_missing_phases(v_id, 'remediation run ' || p_run_id) = 0
                      AND remediation.appointment_image(v_id) = v_before;
        FOR v_phase IN SELECT p.id, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
        LOOP
            RETURN NEXT remediation.record(p_run_id, 'missing_phases', p_reason, 'appointment_phases', v_phase.id, 'insert',
                                           NULL, v_phase.image);
        END LOOP;
        v_after := remediation.appointment_image(v_id);
        IF v_after <> v_before THEN  -- flagged: the segments are unusable
            RETURN NEXT remediation.record(p_run_id, 'missing_phases', p_reason, 'appointments', v_id, 'update', v_before, v_after);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.create_missing_phases(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer) IS 'Runbook step missing_phases (incident fix 2): derive the phases of live composite appointments that have none.';

CREATE FUNCTION remediation.diagnose_failures(p_appointment_ids bigint[]) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    v_count integer;
BEGIN
    INSERT INTO remediation.failure_diagnoses AS f (appointment_id, category, blocking_cause, error_code, diagnosed_at)
    SELECT d.appointment_id, d.category, d.blocking_cause, a.sync_error_code, now()
    FROM appointments a
    JOIN remediation.sync_diagnosis d ON d.appointment_id = a.id
    WHERE a.id = ANY (p_appointment_ids) AND (a.calcom_sync_status = 'failed' OR a.requires_manual_review)
      AND NOT EXISTS (SELECT 1 FROM remediation.categories k WHERE k.category = a.sync_error_code AND k.origin = 'worker')
    ON CONFLICT (appointment_id) DO UPDATE
        SET category = EXCLUDED.category, blocking_cause = EXCLUDED.blocking_cause, error_code = EXCLUDED.error_code,
            diagnosed_at = EXCLUDED.diagnosed_at;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION remediation.diagnose_failures(p_appointment_ids bigint[]) IS 'Record in remediation.failure_diagnoses why the app''s failures of these appointments happened (the worker''s failures are skipped); returns how many.';

CREATE VIEW calsync.remediation_duplicate_bookings AS
SELECT
    NULL::bigint AS appointment_id,
    NULL::bigint AS customer_id,
    NULL::timestamp with time zone AS starts_at,
    NULL::bigint AS service_id,
    NULL::bigint AS calcom_booking_id,
    NULL::character varying(50) AS calcom_v2_booking_uid,
    NULL::character varying(255) AS status,
    NULL::character varying(32) AS calcom_sync_status,
    NULL::bigint[] AS duplicates_of,
    NULL::text AS reason;

COMMENT ON VIEW calsync.remediation_duplicate_bookings IS 'The query of remediation.duplicate_bookings, read through remediation.duplicate_bookings_without_jit().';

CREATE FUNCTION remediation.duplicate_bookings_without_jit() RETURNS SETOF calsync.remediation_duplicate_bookings
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    AS $$
    SELECT * FROM calsync.remediation_duplicate_bookings
$$;

COMMENT ON FUNCTION remediation.duplicate_bookings_without_jit() IS 'The rows of remediation.duplicate_bookings, planned without JIT (see the head of this file).';

CREATE FUNCTION remediation.failure_category(p_appointment_id bigint) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT d.category FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;

COMMENT ON FUNCTION remediation.failure_category(p_appointment_id bigint) IS 'The category of a failing appointment''s sync: the worker''s verdict, else what blocks it in the data, else Cal.com''s message, else OTHER (remediation.sync_diagnosis).';

CREATE TABLE calsync.outbox_delivery (
    outbox_id uuid NOT NULL,
    aggregateid text NOT NULL,
    status text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    locked_by text,
    locked_until timestamp with time zone,
    last_error text,
    last_category text,
    covers_seq bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    CONSTRAINT outbox_delivery_running_has_lease CHECK (((status <> 'running'::text) OR ((locked_by IS NOT NULL) AND (locked_until IS NOT NULL)))),
    CONSTRAINT outbox_delivery_status_known CHECK ((status = ANY (ARRAY['running'::text, 'retry'::text, 'dead'::text])))
)
WITH (fillfactor='70', autovacuum_vacuum_scale_factor='0.01', autovacuum_vacuum_cost_delay='0');

COMMENT ON TABLE calsync.outbox_delivery IS 'Delivery state of outbox events being worked on (made by the claim; deleted on delivery).';

COMMENT ON COLUMN calsync.outbox_delivery.status IS 'running (leased to locked_by until locked_until), retry (due at next_attempt_at) or dead';

COMMENT ON COLUMN calsync.outbox_delivery.covers_seq IS 'the appointment''s newest event when claimed: delivery coalesces every event up to it';

CREATE TABLE calsync.sync_attempts (
    id bigint NOT NULL,
    outbox_id uuid,
    appointment_id bigint NOT NULL,
    phase_id bigint,
    worker_id text NOT NULL,
    action text NOT NULL,
    attempt integer,
    request_method text NOT NULL,
    request_path text NOT NULL,
    request_body jsonb,
    response_status integer,
    response_headers jsonb,
    response_body text,
    duration_ms double precision NOT NULL,
    category text NOT NULL,
    retryable boolean,
    error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    response_size bigint,
    response_truncated boolean,
    booking_uid text,
    request_size bigint,
    bodies_kept boolean
)
WITH (toast_tuple_target='128');

COMMENT ON TABLE calsync.sync_attempts IS 'Every HTTP attempt to Cal.com: failures in full (request, never the API key; status, headers, body, duration, category), successes as status, request id, booking uid, latency and sizes (bodies when archive_success_bodies is true).';

COMMENT ON COLUMN calsync.sync_attempts.response_status IS 'HTTP status; NULL when there was no response (timeout, connection reset)';

COMMENT ON COLUMN calsync.sync_attempts.category IS 'OK, or the failure category (PAST_APPOINTMENT, HOST_UNAVAILABLE, VALIDATION, …)';

COMMENT ON COLUMN calsync.sync_attempts.response_size IS 'bytes Cal.com sent (or declared) before any cap; NULL before revision 0014';

COMMENT ON COLUMN calsync.sync_attempts.response_truncated IS 'true when response_body holds only the first part of what Cal.com sent';

COMMENT ON COLUMN calsync.sync_attempts.booking_uid IS 'the Cal.com booking the exchange is about (response data.uid, else the path''s); NULL before revision 0020';

COMMENT ON COLUMN calsync.sync_attempts.request_size IS 'bytes of the request body sent (as archived JSON); NULL before revision 0020';

COMMENT ON COLUMN calsync.sync_attempts.bodies_kept IS 'false: a successful exchange archived without its bodies and headers other than x-request-id (setting archive_success_bodies); NULL before revision 0020';

CREATE TABLE public.customers (
    id bigint NOT NULL,
    company_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    email character varying(255),
    phone character varying(255),
    source character varying(255),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    deleted_at timestamp with time zone,
    email_is_placeholder boolean DEFAULT false NOT NULL
);

COMMENT ON COLUMN public.customers.email_is_placeholder IS 'true while email is calsync''s customer_<id>@<domain> placeholder, not a real address';

CREATE TABLE remediation.categories (
    category text NOT NULL,
    origin text NOT NULL,
    retryable boolean NOT NULL,
    requeue_when_fixed boolean NOT NULL,
    description text NOT NULL,
    recommended_action text NOT NULL,
    runbook_step text,
    sort_order bigint NOT NULL,
    scope text DEFAULT 'appointment'::text NOT NULL,
    CONSTRAINT categories_origin_check CHECK ((origin = ANY (ARRAY['worker'::text, 'incident'::text]))),
    CONSTRAINT categories_scope_is_appointment_or_key CHECK ((scope = ANY (ARRAY['appointment'::text, 'key'::text])))
);

COMMENT ON TABLE remediation.categories IS 'Why a sync fails, and what to do about it.';

COMMENT ON COLUMN remediation.categories.requeue_when_fixed IS 'the runbook''s requeue step retries such a failure once nothing in the data blocks it any more (remediation.blocking_cause() is NULL); false: a person decides';

COMMENT ON COLUMN remediation.categories.scope IS 'appointment: a problem of one appointment''s sync; key: of the Cal.com key or base URL, which pauses every sync of the key (not counted as attempts) until it works';

CREATE TABLE remediation.failure_diagnoses (
    appointment_id bigint NOT NULL,
    category text NOT NULL,
    blocking_cause text,
    error_code text,
    diagnosed_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE remediation.failure_diagnoses IS 'Why each failure the app recorded happened, diagnosed from the data when it was recorded (the worker''s failures carry their category themselves).';

COMMENT ON COLUMN remediation.failure_diagnoses.appointment_id IS 'the failing appointment';

COMMENT ON COLUMN remediation.failure_diagnoses.category IS 'the category found (remediation.sync_diagnosis at that moment)';

COMMENT ON COLUMN remediation.failure_diagnoses.blocking_cause IS 'what in the data blocked it then, or NULL';

COMMENT ON COLUMN remediation.failure_diagnoses.error_code IS 'the app''s sync_error_code of the failure';

COMMENT ON COLUMN remediation.failure_diagnoses.diagnosed_at IS 'when it was diagnosed';

CREATE VIEW calsync.remediation_failed_syncs AS
 SELECT a.id AS appointment_id,
    a.customer_id,
    ( SELECT c.name
           FROM public.customers c
          WHERE (c.id = a.customer_id)) AS customer_name,
    a.starts_at,
    a.status,
    f.category,
    k.retryable,
    COALESCE(d.last_error, a.sync_error_message) AS last_error,
    a.sync_error_code AS error_code,
    a.sync_error_detail AS error_detail,
    GREATEST((a.sync_attempt_count)::integer, COALESCE(d.attempts, 0)) AS attempts,
    COALESCE(att.first_failure_at, a.manual_review_flagged_at, a.last_sync_attempt_at) AS first_failure_at,
    COALESCE(att.last_failure_at, a.last_sync_attempt_at, a.manual_review_flagged_at) AS last_failure_at,
    a.requires_manual_review,
    d.status AS outbox_status,
    k.recommended_action,
    k.runbook_step
   FROM ((((((public.appointments a
     LEFT JOIN remediation.categories w ON (((w.category = (a.sync_error_code)::text) AND (w.origin = 'worker'::text))))
     LEFT JOIN remediation.failure_diagnoses fd ON ((fd.appointment_id = a.id)))
     CROSS JOIN LATERAL ( SELECT COALESCE(w.category, fd.category, remediation.failure_category(a.id)) AS category
         OFFSET 0) f)
     LEFT JOIN remediation.categories k ON ((k.category = f.category)))
     LEFT JOIN LATERAL ( SELECT d_1.status,
            d_1.attempts,
            d_1.last_error
           FROM calsync.outbox_delivery d_1
          WHERE (d_1.aggregateid = (a.id)::text)
          ORDER BY d_1.created_at DESC
         LIMIT 1) d ON (true))
     LEFT JOIN LATERAL ( SELECT min(t.created_at) AS first_failure_at,
            max(t.created_at) AS last_failure_at
           FROM calsync.sync_attempts t
          WHERE ((t.appointment_id = a.id) AND (t.category <> 'OK'::text))) att ON (true))
  WHERE (((a.calcom_sync_status)::text = 'failed'::text) OR a.requires_manual_review);

COMMENT ON VIEW calsync.remediation_failed_syncs IS 'The query of remediation.failed_syncs, read through remediation.failed_syncs_without_jit().';

CREATE FUNCTION remediation.failed_syncs_without_jit() RETURNS SETOF calsync.remediation_failed_syncs
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    AS $$
    SELECT * FROM calsync.remediation_failed_syncs
$$;

COMMENT ON FUNCTION remediation.failed_syncs_without_jit() IS 'The rows of remediation.failed_syncs, planned without JIT (see the head of this file).';

CREATE FUNCTION remediation.flag_host_conflicts(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    r record;
    v_message text;
    v_change remediation.change;
    v_issue bigint;
BEGIN
    FOR r IN SELECT DISTINCT ON (h.appointment_id) h.* FROM remediation.host_conflicts h
             JOIN appointments a ON a.id = h.appointment_id
             WHERE NOT (a.requires_manual_review AND a.sync_error_code IS NOT DISTINCT FROM 'HOST_UNAVAILABLE')
             ORDER BY h.appointment_id, h.conflicts_with LIMIT p_limit
    LOOP
        v_message := format('Host conflict: %s is also booked %s by appointment #%s; reschedule one of them (or cancel it)',
                            r.host_key, r.other_busy, r.conflicts_with);
        v_change := remediation.change_appointment(p_run_id, 'host_conflicts', p_reason, r.appointment_id,
            jsonb_build_object('calcom_sync_status', 'failed', 'requires_manual_review', true,
                               'manual_review_flagged_at', now(), 'sync_error_code', 'HOST_UNAVAILABLE',
                               'sync_error_message', v_message),
            p_dry_run, format('a.status NOT IN (''cancelled'', ''no_show'') AND a.sync_error_message IS DISTINCT FROM %L', v_message));
        CONTINUE WHEN v_change IS NULL;
        RETURN NEXT v_change;
        IF NOT p_dry_run THEN
            INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
            VALUES ('host_busy_time_no_overlap', 'appointments', r.appointment_id, v_message, 'remediation run ' || p_run_id)
            ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING
            RETURNING id INTO v_issue;
            IF v_issue IS NOT NULL THEN
                RETURN NEXT remediation.record(p_run_id, 'host_conflicts', p_reason, 'integrity_issues', v_issue, 'insert', NULL,
                    (SELECT to_jsonb(i) FROM calsync.integrity_issues i WHERE i.id = v_issue));
            END IF;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.flag_host_conflicts(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer) IS 'Runbook step host_conflicts (remaining category 2): flag double-booked hosts'' appointments for a reschedule, naming the other booking.';

CREATE FUNCTION remediation.host_conflicts_of(p_appointment_id bigint) RETURNS TABLE(other_id bigint, host_key text, busy tstzrange, other_busy tstzrange)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT DISTINCT ON (h.other_id) h.other_id, h.host_key, h.busy, h.other_busy
    FROM remediation.host_overlaps h
    WHERE h.appointment_id = p_appointment_id
    ORDER BY h.other_id, lower(h.busy)
$$;

COMMENT ON FUNCTION remediation.host_conflicts_of(p_appointment_id bigint) IS 'Live appointments of the same host whose staff-required time overlaps this appointment''s (remediation.host_overlaps).';

CREATE TABLE public.staff (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    company_id bigint NOT NULL,
    branch_id uuid,
    name character varying(255) NOT NULL,
    email character varying(255),
    calcom_user_id bigint,
    is_active boolean DEFAULT true NOT NULL
);

CREATE VIEW calsync.appointment_busy_intervals AS
 SELECT a.id AS appointment_id,
    x.phase_id,
    a.staff_id,
    calsync.host_key(s.calcom_user_id, a.staff_id) AS host_key,
    x.busy
   FROM ((public.appointments a
     JOIN public.staff s ON ((s.id = a.staff_id)))
     CROSS JOIN LATERAL ( SELECT p.id AS phase_id,
            tstzrange(p.start_time, p.end_time, '[)'::text) AS busy
           FROM public.appointment_phases p
          WHERE ((p.appointment_id = a.id) AND p.staff_required AND (p.end_time > p.start_time))
        UNION ALL
         SELECT NULL::bigint AS int8,
            tstzrange(a.starts_at, a.ends_at, '[)'::text) AS tstzrange
          WHERE ((a.ends_at > a.starts_at) AND (NOT (EXISTS ( SELECT 1
                   FROM public.appointment_phases p
                  WHERE (p.appointment_id = a.id)))))) x)
  WHERE ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[]));

COMMENT ON VIEW calsync.appointment_busy_intervals IS 'Staff-required time of live appointments: phases with staff_required, else the whole appointment.';

COMMENT ON COLUMN calsync.appointment_busy_intervals.appointment_id IS 'the live appointment';

COMMENT ON COLUMN calsync.appointment_busy_intervals.phase_id IS 'the phase, or NULL for a whole appointment without phases';

COMMENT ON COLUMN calsync.appointment_busy_intervals.staff_id IS 'its staff row';

COMMENT ON COLUMN calsync.appointment_busy_intervals.host_key IS 'calsync.host_key(): the Cal.com user, else the staff row';

COMMENT ON COLUMN calsync.appointment_busy_intervals.busy IS 'the busy time, [start, end)';

CREATE VIEW remediation.host_overlaps AS
 SELECT a.id AS appointment_id,
    b.id AS other_id,
    i.host_key,
    i.busy,
    o.busy AS other_busy,
    a.staff_id,
    b.staff_id AS other_staff_id,
    a.starts_at,
    a.ends_at,
    a.calcom_sync_status
   FROM ((((public.appointments a
     JOIN public.staff s ON ((s.id = a.staff_id)))
     CROSS JOIN LATERAL ( SELECT b_1.id,
            b_1.staff_id
           FROM (public.staff s2
             JOIN public.appointments b_1 ON ((b_1.staff_id = s2.id)))
          WHERE ((calsync.host_key(s2.calcom_user_id, s2.id) = calsync.host_key(s.calcom_user_id, s.id)) AND (b_1.starts_at > (a.starts_at - '1 day'::interval)) AND (b_1.starts_at < a.ends_at) AND (b_1.ends_at > a.starts_at) AND (b_1.id <> a.id) AND ((b_1.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])))
         OFFSET 0) b)
     CROSS JOIN LATERAL ( SELECT x.host_key,
            x.busy
           FROM calsync.appointment_busy_intervals x
          WHERE (x.appointment_id = a.id)
         OFFSET 0) i)
     CROSS JOIN LATERAL ( SELECT x.busy
           FROM calsync.appointment_busy_intervals x
          WHERE ((x.appointment_id = b.id) AND (x.busy && i.busy))
         OFFSET 0) o)
  WHERE ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[]));

COMMENT ON VIEW remediation.host_overlaps IS 'Every pair of live appointments whose host is booked twice at once (both directions; a row per overlapping phase). Filter by appointment_id; remediation.host_conflicts lists the ones that block a sync.';

COMMENT ON COLUMN remediation.host_overlaps.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.host_overlaps.other_id IS 'the live appointment of the same host at an overlapping time';

COMMENT ON COLUMN remediation.host_overlaps.host_key IS 'the host: calcom_user:<id>, else staff:<uuid>';

COMMENT ON COLUMN remediation.host_overlaps.busy IS 'this appointment''s staff-required time that overlaps';

COMMENT ON COLUMN remediation.host_overlaps.other_busy IS 'the other appointment''s overlapping time';

COMMENT ON COLUMN remediation.host_overlaps.staff_id IS 'this appointment''s staff row';

COMMENT ON COLUMN remediation.host_overlaps.other_staff_id IS 'the other appointment''s staff row';

COMMENT ON COLUMN remediation.host_overlaps.starts_at IS 'this appointment''s start';

COMMENT ON COLUMN remediation.host_overlaps.ends_at IS 'this appointment''s end';

COMMENT ON COLUMN remediation.host_overlaps.calcom_sync_status IS 'this appointment''s sync status';

CREATE VIEW calsync.remediation_host_conflicts AS
 SELECT DISTINCT ON (a.id, h.other_id) a.id AS appointment_id,
    h.other_id AS conflicts_with,
    h.host_key,
    h.busy,
    h.other_busy,
    a.starts_at,
    a.staff_id,
    h.other_staff_id,
    a.calcom_sync_status
   FROM (public.appointments a
     CROSS JOIN LATERAL ( SELECT h_1.appointment_id,
            h_1.other_id,
            h_1.host_key,
            h_1.busy,
            h_1.other_busy,
            h_1.staff_id,
            h_1.other_staff_id,
            h_1.starts_at,
            h_1.ends_at,
            h_1.calcom_sync_status
           FROM remediation.host_overlaps h_1
          WHERE (h_1.appointment_id = a.id)
         OFFSET 0) h)
  WHERE (((a.calcom_sync_status)::text = ANY ((ARRAY['failed'::character varying, 'pending'::character varying])::text[])) AND (a.ends_at >= now()) AND ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])))
  ORDER BY a.id, h.other_id, (lower(h.busy));

COMMENT ON VIEW calsync.remediation_host_conflicts IS 'The query of remediation.host_conflicts, read through remediation.host_conflicts_without_jit().';

CREATE FUNCTION remediation.host_conflicts_without_jit() RETURNS SETOF calsync.remediation_host_conflicts
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    AS $$
    SELECT * FROM calsync.remediation_host_conflicts
$$;

COMMENT ON FUNCTION remediation.host_conflicts_without_jit() IS 'The rows of remediation.host_conflicts, planned without JIT (see the head of this file).';

CREATE FUNCTION remediation.operator() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(nullif(current_setting('calsync.operator', true), ''), session_user::text)
$$;

COMMENT ON FUNCTION remediation.operator() IS 'Who runs the runbook: the session setting calsync.operator (the CLI sets the OS user), else the database user.';

CREATE FUNCTION remediation.reconcile_bookings(p_run_id uuid, p_bookings jsonb, p_since timestamp with time zone, p_until timestamp with time zone DEFAULT NULL::timestamp with time zone, p_dry_run boolean DEFAULT true, p_now timestamp with time zone DEFAULT now()) RETURNS SETOF calsync.reconcile_finding
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_bookings calsync.calcom_booking[] := ARRAY(
        SELECT r FROM jsonb_populate_recordset(NULL::calsync.calcom_booking, coalesce(p_bookings, '[]')) AS r);
    f calsync.reconcile_finding;
    v_id bigint;
    v_repair text;
    v_detail text;
BEGIN
    IF p_dry_run THEN
        RETURN QUERY
        SELECT o.id, c.kind, c.uid, c.booking_id, c.appointment_id, c.slot, c.repair, c.detail, c.successor_uid,
               c.successor_booking_id, c.calcom_start, c.calcom_end, c.our_start, c.our_end, c.event_type_id,
               o.id IS NULL
        FROM remediation.reconcile_compare(v_bookings, p_since, p_until) AS c
        LEFT JOIN calsync.reconcile_findings o ON o.kind = c.kind AND o.uid = c.uid AND o.resolved_at IS NULL;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('calsync.reconcile_findings'));  -- one recording run at a time
    FOR f IN SELECT * FROM remediation.reconcile_compare(v_bookings, p_since, p_until) LOOP
        UPDATE calsync.reconcile_findings o
        -- an outside reschedule the integrity rules refused stays a person's while the finding is open
        SET booking_id = f.booking_id, appointment_id = f.appointment_id, slot = f.slot,
            repair = CASE WHEN o.repair = 'person' AND f.repair = 'apply_reschedule' THEN o.repair ELSE f.repair END,
            detail = CASE WHEN o.repair = 'person' AND f.repair = 'apply_reschedule' THEN o.detail ELSE f.detail END,
            successor_uid = f.successor_uid, successor_booking_id = f.successor_booking_id,
            calcom_start = f.calcom_start, calcom_end = f.calcom_end, our_start = f.our_start, our_end = f.our_end,
            event_type_id = f.event_type_id, last_seen_by = p_run_id, last_seen_at = p_now
        WHERE o.kind = f.kind AND o.uid = f.uid AND o.resolved_at IS NULL
        RETURNING o.id, o.repair, o.detail INTO v_id, v_repair, v_detail;
        f.is_new := v_id IS NULL;
        IF NOT f.is_new THEN
            f.id := v_id;
            f.repair := v_repair;
            f.detail := v_detail;
        ELSE
            INSERT INTO calsync.reconcile_findings
                (kind, uid, booking_id, appointment_id, slot, repair, detail, successor_uid, successor_booking_id,
                 calcom_start, calcom_end, our_start, our_end, event_type_id, found_by, found_at, last_seen_by,
                 last_seen_at)
            VALUES (f.kind, f.uid, f.booking_id, f.appointment_id, f.slot, f.repair, f.detail, f.successor_uid,
                    f.successor_booking_id, f.calcom_start, f.calcom_end, f.our_start, f.our_end, f.event_type_id,
                    p_run_id, p_now, p_run_id, p_now)
            RETURNING id INTO f.id;
        END IF;
        RETURN NEXT f;
    END LOOP;
    UPDATE calsync.reconcile_findings o
    SET resolved_at = p_now, resolved_by = p_run_id, resolution = 'not found again by reconcile run ' || p_run_id
    WHERE o.resolved_at IS NULL AND o.last_seen_by IS DISTINCT FROM p_run_id
      AND coalesce(o.our_start, o.calcom_start) >= p_since
      AND (p_until IS NULL OR coalesce(o.our_start, o.calcom_start) < p_until);
END
$$;

COMMENT ON FUNCTION remediation.reconcile_bookings(p_run_id uuid, p_bookings jsonb, p_since timestamp with time zone, p_until timestamp with time zone, p_dry_run boolean, p_now timestamp with time zone) IS 'Compare what Cal.com holds (calsync.calcom_booking JSON) with what we synced and keep the findings in calsync.reconcile_findings (a dry run, the default, records nothing); returns them.';

CREATE FUNCTION remediation.reconcile_cancellations(p_limit integer DEFAULT NULL::integer) RETURNS SETOF calsync.reconcile_finding
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT o.id, o.kind, o.uid, o.booking_id, o.appointment_id, o.slot, o.repair, o.detail, o.successor_uid,
           o.successor_booking_id, o.calcom_start, o.calcom_end, o.our_start, o.our_end, o.event_type_id, false
    FROM calsync.reconcile_findings o
    WHERE o.resolved_at IS NULL AND o.kind = 'orphan_at_calcom' AND o.repair = 'cancel_at_calcom'
      AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings s JOIN appointments a ON a.id = s.appointment_id
                      WHERE s.uid = o.uid AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.calcom_v2_booking_uid = o.uid
                                                     AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
                      WHERE p.calcom_booking_uid = o.uid AND a.status NOT IN ('cancelled', 'no_show'))
      AND NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = o.appointment_id::text)
    ORDER BY o.id LIMIT p_limit
$$;

COMMENT ON FUNCTION remediation.reconcile_cancellations(p_limit integer) IS 'Open findings of bookings calsync made that no live appointment holds: what `calsync reconcile --repair` cancels at Cal.com.';

CREATE FUNCTION remediation.reconcile_compare(p_bookings calsync.calcom_booking[], p_since timestamp with time zone, p_until timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF calsync.reconcile_finding
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
    WITH RECURSIVE b AS (  -- one row per uid; a booking Cal.com has wins over a 404 for the same uid
        SELECT DISTINCT ON (x.uid) x.*, (coalesce(x.found, false)
               AND lower(coalesce(x.status, '')) NOT IN ('cancelled', 'rejected')) AS live
        FROM unnest(p_bookings) AS x WHERE x.uid IS NOT NULL
        ORDER BY x.uid, x.found DESC NULLS LAST
    ),
    ours AS (SELECT * FROM remediation.reconcile_ours(p_since, p_until)),
    chain AS (  -- from each of our bookings along rescheduledToUid, at most 5 hops
        SELECT o.uid AS origin, b.uid, b.live, b.found, b.rescheduled_to_uid, 0 AS hop
        FROM ours o JOIN b ON b.uid = o.uid WHERE NOT o.unsettled
        UNION ALL
        SELECT c.origin, n.uid, n.live, n.found, n.rescheduled_to_uid, c.hop + 1
        FROM chain c JOIN b n ON n.uid = c.rescheduled_to_uid
        WHERE NOT c.live AND c.found AND c.hop < 5 AND n.uid <> c.origin
    ),
    tail AS (SELECT DISTINCT ON (c.origin) c.origin, c.uid, c.hop FROM chain c ORDER BY c.origin, c.hop DESC),
    -- uids held by an appointment that is not cancelled (any time, any status): never an orphan at Cal.com
    held AS (
        SELECT s.uid FROM calsync.synced_bookings s JOIN appointments a ON a.id = s.appointment_id
        WHERE a.status NOT IN ('cancelled', 'no_show')
        UNION SELECT a.calcom_v2_booking_uid FROM appointments a
        WHERE a.calcom_v2_booking_uid IS NOT NULL AND a.status NOT IN ('cancelled', 'no_show')
        UNION SELECT p.calcom_booking_uid FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
        WHERE p.calcom_booking_uid IS NOT NULL AND a.status NOT IN ('cancelled', 'no_show')
        UNION SELECT t.uid FROM tail t WHERE t.hop > 0
    ),
    here AS (  -- our bookings against Cal.com's
        SELECT o.*, b0.found AS found0, b0.live AS live0, b0.start_at AS start0, b0.end_at AS end0,
               f.uid AS f_uid, f.booking_id AS f_id, f.found AS f_found, f.live AS f_live, f.start_at AS f_start,
               f.end_at AS f_end, f.cancellation_reason AS f_reason, t.hop
        FROM ours o
        JOIN b b0 ON b0.uid = o.uid
        JOIN tail t ON t.origin = o.uid
        JOIN b f ON f.uid = t.uid
        WHERE NOT o.unsettled
    ),
    found_here AS (
        SELECT h.*,
            CASE WHEN NOT h.found0 THEN 'orphan_here'
                 WHEN h.live0 THEN CASE WHEN (h.start0, h.end0) IS DISTINCT FROM (h.our_start, h.our_end) THEN 'drift' END
                 WHEN h.hop > 0 AND h.f_live THEN 'drift'
                 ELSE 'orphan_here' END AS kind,
            (h.f_reason LIKE 'Cancelled in the salon system%' OR h.f_reason LIKE 'calsync%') AS by_calsync
        FROM here h
    ),
    calcom AS (  -- Cal.com's live bookings in the window that nothing of ours holds
        SELECT b.*, a.id AS a_id, a.status AS a_status,
               CASE WHEN b.metadata_appointment ~ '^[0-9]{1,18}$' THEN b.metadata_appointment::bigint END AS m_app,
               CASE WHEN b.metadata_phase ~ '^[0-9]{1,18}$' THEN b.metadata_phase::bigint ELSE 0 END AS m_slot
        FROM b
        LEFT JOIN appointments a ON b.metadata_appointment ~ '^[0-9]{1,18}$' AND a.id = b.metadata_appointment::bigint
        WHERE b.live AND b.start_at >= p_since AND (p_until IS NULL OR b.start_at < p_until)
          AND b.uid NOT IN (SELECT h.uid FROM held h)
    ),
    found_calcom AS (
        SELECT c.*, r.uid AS recorded,
            CASE WHEN c.m_app IS NULL THEN 'person'
                 WHEN c.a_id IS NULL OR c.a_status IN ('cancelled', 'no_show') THEN 'cancel_at_calcom'
                 WHEN NOT calsync.is_bookable_status(c.a_status) THEN 'person'
                 WHEN c.m_slot <> 0 AND NOT EXISTS (SELECT 1 FROM appointment_phases p
                                                    WHERE p.id = c.m_slot AND p.appointment_id = c.a_id) THEN 'cancel_at_calcom'
                 WHEN r.uid IS NULL THEN 'requeue'  -- none recorded: a lost reply, the worker adopts it
                 WHEN c.rescheduled_from_uid IS NOT NULL THEN 'person'  -- moved at Cal.com from outside the window
                 WHEN rb.live THEN 'cancel_at_calcom'  -- the slot's recorded booking is live: this one is a second
                 -- the recorded one is lost (and forgotten by its own requeue): the worker adopts this one
                 WHEN rb.uid IS NOT NULL AND (NOT rb.found OR rb.cancellation_reason LIKE 'Cancelled in the salon system%'
                                              OR rb.cancellation_reason LIKE 'calsync%') THEN 'requeue'
                 ELSE 'person' END AS repair
        FROM calcom c
        LEFT JOIN LATERAL (  -- the booking recorded for the slot the metadata names
            SELECT coalesce(
                (SELECT s.uid FROM calsync.synced_bookings s WHERE s.appointment_id = c.a_id AND s.slot = c.m_slot),
                (SELECT a.calcom_v2_booking_uid FROM appointments a WHERE a.id = c.a_id AND c.m_slot = 0 AND NOT a.is_composite),
                (SELECT p.calcom_booking_uid FROM appointment_phases p WHERE p.id = c.m_slot AND p.appointment_id = c.a_id)) AS uid
        ) AS r ON c.a_id IS NOT NULL
        LEFT JOIN b rb ON rb.uid = r.uid
        WHERE c.m_app IS NULL OR NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = c.m_app::text)
    )
    SELECT NULL::bigint, h.kind, h.uid, h.booking_id, h.appointment_id, h.slot,
        CASE WHEN h.kind = 'orphan_here' THEN CASE WHEN NOT h.f_found OR h.by_calsync THEN 'requeue' ELSE 'person' END
             WHEN h.live0 THEN 'requeue'
             WHEN (h.f_start, h.f_end) IS NOT DISTINCT FROM (h.our_start, h.our_end) THEN 'adopt_successor'
             WHEN h.slot = 0 THEN 'apply_reschedule'
             ELSE 'person' END,
        CASE WHEN h.kind = 'orphan_here' AND NOT h.found0
                 THEN format('booking %s of appointment #%s is unknown at Cal.com (404): lost; requeued, the worker books it again', h.uid, h.appointment_id)
             WHEN h.kind = 'orphan_here' AND NOT h.f_found
                 THEN format('booking %s of appointment #%s was moved at Cal.com to %s, which Cal.com does not know (404): lost; requeued, the worker books it again', h.uid, h.appointment_id, h.f_uid)
             WHEN h.kind = 'orphan_here' AND h.by_calsync
                 THEN format('booking %s of live appointment #%s was cancelled by calsync: lost; requeued, the worker books it again', h.f_uid, h.appointment_id)
             WHEN h.kind = 'orphan_here'
                 THEN format('booking %s of appointment #%s was cancelled at Cal.com by the attendee or host: cancel the appointment in the salon app, or requeue it to book it again', h.f_uid, h.appointment_id)
             WHEN h.live0
                 THEN format('Cal.com has booking %s at %s, the salon at %s: the salon''s time holds; requeued, the worker moves the booking',
                             h.uid, remediation.reconcile_interval(h.start0, h.end0), remediation.reconcile_interval(h.our_start, h.our_end))
             WHEN (h.f_start, h.f_end) IS NOT DISTINCT FROM (h.our_start, h.our_end)
                 THEN format('booking %s of appointment #%s was moved at Cal.com to %s at the salon''s own time (a reply the worker lost): %s is recorded as its booking', h.uid, h.appointment_id, h.f_uid, h.f_uid)
             WHEN h.slot = 0
                 THEN format('booking %s of appointment #%s was moved at Cal.com (attendee or host) to %s at %s, the salon has %s: the appointment takes the new time if the integrity rules accept it',
                             h.uid, h.appointment_id, h.f_uid, remediation.reconcile_interval(h.f_start, h.f_end), remediation.reconcile_interval(h.our_start, h.our_end))
             ELSE format('booking %s of phase %s of appointment #%s was moved at Cal.com to %s at %s: one phase cannot move alone; move the appointment in the salon app, or requeue it to move the booking back',
                         h.uid, h.slot, h.appointment_id, h.f_uid, remediation.reconcile_interval(h.f_start, h.f_end)) END,
        CASE WHEN h.kind = 'drift' AND NOT h.live0 THEN h.f_uid END,
        CASE WHEN h.kind = 'drift' AND NOT h.live0 THEN h.f_id END,
        CASE WHEN h.live0 THEN h.start0 WHEN h.f_live THEN h.f_start END,
        CASE WHEN h.live0 THEN h.end0 WHEN h.f_live THEN h.f_end END,
        h.our_start, h.our_end, h.event_type_id, NULL::boolean
    FROM found_here h WHERE h.kind IS NOT NULL
    UNION ALL
    SELECT NULL::bigint, 'orphan_at_calcom', c.uid, c.booking_id, c.a_id, CASE WHEN c.m_app IS NOT NULL THEN c.m_slot END,
        c.repair,
        CASE WHEN c.m_app IS NULL
                 THEN format('booking %s at %s was made at Cal.com, not by calsync (no calsync metadata): enter it in the salon app, or cancel it at Cal.com',
                             c.uid, remediation.reconcile_interval(c.start_at, c.end_at))
             WHEN c.a_id IS NULL
                 THEN format('booking %s carries calsync metadata of appointment #%s, which does not exist here: cancelled at Cal.com', c.uid, c.m_app)
             WHEN c.a_status IN ('cancelled', 'no_show')
                 THEN format('booking %s of appointment #%s, which is %s here: cancelled at Cal.com', c.uid, c.a_id, c.a_status)
             WHEN c.repair = 'person' AND NOT calsync.is_bookable_status(c.a_status)
                 THEN format('booking %s of appointment #%s, which is %s here: a person decides', c.uid, c.a_id, c.a_status)
             WHEN c.repair = 'cancel_at_calcom' AND c.recorded IS NULL
                 THEN format('booking %s of appointment #%s names phase %s, which it no longer has: cancelled at Cal.com', c.uid, c.a_id, c.m_slot)
             WHEN c.repair = 'cancel_at_calcom'
                 THEN format('booking %s is a second booking of appointment #%s (slot %s has the live booking %s): cancelled at Cal.com', c.uid, c.a_id, c.m_slot, c.recorded)
             WHEN c.repair = 'requeue' AND c.recorded IS NULL
                 THEN format('booking %s of appointment #%s was never recorded here (a reply the worker lost): requeued, the worker adopts it by its metadata', c.uid, c.a_id)
             WHEN c.repair = 'requeue'
                 THEN format('booking %s of appointment #%s was never recorded here, and the one recorded (%s) is lost: requeued, the worker adopts this one by its metadata', c.uid, c.a_id, c.recorded)
             WHEN c.rescheduled_from_uid IS NOT NULL
                 THEN format('booking %s of appointment #%s was moved at Cal.com from %s (outside the window) while %s is recorded: a person decides, or reconcile with an earlier --since', c.uid, c.a_id, c.rescheduled_from_uid, c.recorded)
             ELSE format('booking %s of appointment #%s was never recorded here, and the one recorded (%s) was cancelled at Cal.com outside the salon: a person decides', c.uid, c.a_id, c.recorded) END,
        NULL, NULL, c.start_at, c.end_at, NULL, NULL, c.event_type_id, NULL::boolean
    FROM found_calcom c
$_$;

COMMENT ON FUNCTION remediation.reconcile_compare(p_bookings calsync.calcom_booking[], p_since timestamp with time zone, p_until timestamp with time zone) IS 'What Cal.com holds against what we synced in [since, until): orphans at Cal.com, orphans here and drift, each with its repair (cancel_at_calcom, requeue, apply_reschedule, adopt_successor, person).';

CREATE FUNCTION remediation.reconcile_event_types() RETURNS SETOF bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT DISTINCT t FROM (
        SELECT calcom_event_type_id FROM services
        UNION ALL SELECT coalesce(child_event_type_id, event_type_id) FROM calcom_event_map
        UNION ALL SELECT event_type_id FROM calsync.synced_bookings) AS x(t)
    WHERE t IS NOT NULL ORDER BY t
$$;

COMMENT ON FUNCTION remediation.reconcile_event_types() IS 'The Cal.com event types `calsync reconcile` lists bookings of: those of the services, the segments and the bookings made.';

CREATE FUNCTION remediation.reconcile_interval(p_start timestamp with time zone, p_end timestamp with time zone) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT coalesce(to_char(p_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '?') || '–'
           || coalesce(to_char(p_end AT TIME ZONE 'UTC', 'HH24:MI'), '?') || ' UTC'
$$;

COMMENT ON FUNCTION remediation.reconcile_interval(p_start timestamp with time zone, p_end timestamp with time zone) IS 'An interval in UTC to the minute, for reconciliation''s findings.';

CREATE FUNCTION remediation.reconcile_ours(p_since timestamp with time zone, p_until timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(appointment_id bigint, slot bigint, uid text, booking_id bigint, our_start timestamp with time zone, our_end timestamp with time zone, event_type_id bigint, synced_start timestamp with time zone, synced_end timestamp with time zone, unsettled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
    WITH ours AS (
        SELECT a.id, s.slot, s.uid, s.booking_id,
               CASE WHEN s.slot = 0 THEN a.starts_at ELSE p.start_time END AS our_start,
               CASE WHEN s.slot = 0 THEN a.ends_at ELSE p.end_time END AS our_end,
               s.event_type_id, s.start_at, s.end_at
        FROM calsync.synced_bookings s
        JOIN appointments a ON a.id = s.appointment_id
        LEFT JOIN appointment_phases p ON p.id = s.slot AND p.appointment_id = a.id
        WHERE calsync.is_bookable_status(a.status) AND (s.slot = 0 OR p.id IS NOT NULL)
        UNION ALL
        SELECT a.id, 0, a.calcom_v2_booking_uid,
               CASE WHEN a.calcom_v2_booking_id ~ '^[0-9]{1,18}$' THEN a.calcom_v2_booking_id::bigint END,
               a.starts_at, a.ends_at,
               s.calcom_event_type_id, NULL, NULL
        FROM appointments a LEFT JOIN services s ON s.id = a.service_id
        WHERE a.calcom_v2_booking_uid IS NOT NULL AND NOT a.is_composite AND calsync.is_bookable_status(a.status)
          AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings x WHERE x.appointment_id = a.id)
        UNION ALL
        SELECT a.id, p.id, p.calcom_booking_uid, p.calcom_booking_id, p.start_time, p.end_time, NULL, NULL, NULL
        FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
        WHERE p.calcom_booking_uid IS NOT NULL AND a.is_composite AND p.staff_required
          AND calsync.is_bookable_status(a.status)
          AND NOT EXISTS (SELECT 1 FROM calsync.synced_bookings x WHERE x.appointment_id = a.id)
    )
    SELECT o.id, o.slot, o.uid, o.booking_id, o.our_start, o.our_end, o.event_type_id, o.start_at, o.end_at,
           EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = o.id::text)
    FROM ours o
    WHERE o.our_start >= p_since AND (p_until IS NULL OR o.our_start < p_until)
    ORDER BY o.id, o.slot
$_$;

COMMENT ON FUNCTION remediation.reconcile_ours(p_since timestamp with time zone, p_until timestamp with time zone) IS 'The Cal.com bookings of live appointments and phases starting in [since, until), as synced here; unsettled: an event of the appointment is still in calsync.outbox.';

CREATE FUNCTION remediation.reconcile_set_phase_booking(p_run_id uuid, p_reason text, p_phase_id bigint, p_uid text, p_booking_id bigint, p_status text) RETURNS remediation.change
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_before jsonb := (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id',
                                                 calcom_booking_id, 'calcom_sync_status', calcom_sync_status)
                       FROM appointment_phases WHERE id = p_phase_id FOR UPDATE);
BEGIN
    UPDATE appointment_phases SET calcom_booking_uid = p_uid, calcom_booking_id = p_booking_id,
        calcom_sync_status = p_status, updated_at = now()
    WHERE id = p_phase_id;
    RETURN remediation.record(p_run_id, 'reconcile', p_reason, 'appointment_phases', p_phase_id, 'update', v_before,
        (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id', calcom_booking_id,
                                   'calcom_sync_status', calcom_sync_status) FROM appointment_phases WHERE id = p_phase_id));
END
$$;

COMMENT ON FUNCTION remediation.reconcile_set_phase_booking(p_run_id uuid, p_reason text, p_phase_id bigint, p_uid text, p_booking_id bigint, p_status text) IS 'Set a phase''s Cal.com booking (uid, id, sync status) for reconciliation and log it before and after.';

CREATE FUNCTION remediation.record(p_run_id uuid, p_step text, p_reason text, p_table text, p_row_id bigint, p_action text, p_before jsonb, p_after jsonb) RETURNS remediation.change
    LANGUAGE sql
    AS $$
    INSERT INTO remediation.log (run_id, step, operator, reason, table_name, row_id, action, before, after)
    VALUES (p_run_id, p_step, remediation.operator(), p_reason, p_table, p_row_id, p_action, p_before, p_after)
    RETURNING step, table_name, row_id, action, before, after
$$;

COMMENT ON FUNCTION remediation.record(p_run_id uuid, p_step text, p_reason text, p_table text, p_row_id bigint, p_action text, p_before jsonb, p_after jsonb) IS 'Write one change of a runbook step to remediation.log and return it.';

CREATE FUNCTION remediation.record_reconcile_cancellation(p_run_id uuid, p_finding_id bigint, p_reason text, p_cancelled boolean, p_http_status integer, p_message text, p_now timestamp with time zone DEFAULT now()) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    f calsync.reconcile_findings%ROWTYPE;
    v_before jsonb;
BEGIN
    SELECT * INTO f FROM calsync.reconcile_findings
    WHERE id = p_finding_id AND resolved_at IS NULL AND repair = 'cancel_at_calcom' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT p_cancelled THEN
        UPDATE calsync.reconcile_findings
        SET detail = split_part(detail, ' [last cancel: ', 1) || format(' [last cancel: HTTP %s %s]',
                                                                       coalesce(p_http_status::text, '-'), left(p_message, 300))
        WHERE id = f.id;
        RETURN NEXT ('reconcile', 'calcom_bookings', coalesce(f.booking_id, 0), 'update',
                     jsonb_build_object('uid', f.uid, 'status', 'accepted'),
                     jsonb_build_object('uid', f.uid, 'error', p_message, 'http_status', p_http_status))::remediation.change;
        RETURN;
    END IF;
    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'calcom_bookings', coalesce(f.booking_id, 0), 'update',
        jsonb_build_object('uid', f.uid, 'status', 'accepted', 'appointment_id', f.appointment_id),
        jsonb_build_object('uid', f.uid, 'status', 'cancelled', 'http_status', p_http_status, 'answer', left(p_message, 300)));
    v_before := jsonb_build_object('resolved_at', f.resolved_at, 'resolved_by', f.resolved_by, 'resolution', f.resolution);
    UPDATE calsync.reconcile_findings SET resolved_at = p_now, resolved_by = p_run_id,
        resolution = format('cancelled at Cal.com by run %s', p_run_id)
    WHERE id = f.id;
    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'reconcile_findings', f.id, 'update', v_before,
        (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
         FROM calsync.reconcile_findings WHERE id = f.id));
END
$$;

COMMENT ON FUNCTION remediation.record_reconcile_cancellation(p_run_id uuid, p_finding_id bigint, p_reason text, p_cancelled boolean, p_http_status integer, p_message text, p_now timestamp with time zone) IS 'Record the cancellation at Cal.com of a booking calsync made that no live appointment holds (logged, finding resolved), or why it failed.';

CREATE FUNCTION remediation.repair_broken_phases(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_id bigint;
    v_phase record;
    v_superseded bigint;
BEGIN
    FOR v_id IN SELECT a.id FROM appointments a
                WHERE a.id IN (SELECT b.appointment_id FROM remediation.broken_phases b)
                  AND a.status NOT IN ('cancelled', 'no_show') AND remediation.blocking_cause(a.id) = 'PHASE_ERROR'
                ORDER BY a.id LIMIT p_limit
    LOOP
        PERFORM 1 FROM appointments WHERE id = v_id FOR UPDATE;
        FOR v_phase IN SELECT p.*, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
        LOOP
            IF p_dry_run THEN
                RETURN NEXT ('broken_phases', 'appointment_phases', v_phase.id, 'delete', v_phase.image, NULL)::remediation.change;
                CONTINUE;
            END IF;
            INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                                   segment_name, staff_required, start_time, end_time, calcom_booking_id,
                                                   calcom_booking_uid, calcom_sync_status, reason)
            VALUES (v_phase.id, v_id, v_phase.sequence_order, v_phase.phase_type, v_phase.segment_key, v_phase.segment_name,
                    v_phase.staff_required, v_phase.start_time, v_phase.end_time, v_phase.calcom_booking_id,
                    v_phase.calcom_booking_uid, v_phase.calcom_sync_status, 'invalid phases: derived again by remediation')
            RETURNING id INTO v_superseded;
            DELETE FROM appointment_phases WHERE id = v_phase.id;
            RETURN NEXT remediation.record(p_run_id, 'broken_phases', p_reason, 'appointment_phases', v_phase.id, 'delete',
                                           v_phase.image, jsonb_build_object('superseded_id', v_superseded));
        END LOOP;
        IF NOT p_dry_run THEN
            PERFORM calsync.create_missing_phases(v_id, 'remediation run ' || p_run_id);
            FOR v_phase IN SELECT p.id, to_jsonb(p) AS image FROM appointment_phases p WHERE p.appointment_id = v_id ORDER BY p.id
            LOOP
                RETURN NEXT remediation.record(p_run_id, 'broken_phases', p_reason, 'appointment_phases', v_phase.id,
                                               'insert', NULL, v_phase.image);
            END LOOP;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.repair_broken_phases(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer) IS 'Runbook step broken_phases: supersede invalid phases (kept in calsync.superseded_phases) and derive them again.';

CREATE FUNCTION remediation.repair_reconcile_findings(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer, p_now timestamp with time zone DEFAULT now()) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    f calsync.reconcile_findings%ROWTYPE;
    v_writer text := current_setting('calsync.writer', true);
    v_ok boolean;
    v_before jsonb;
    v_row jsonb;
    v_event uuid;
    v_change remediation.change;
    v_message text;
    v_rule text;
    v_uid text;
    v_id bigint;
BEGIN
    FOR f IN SELECT * FROM calsync.reconcile_findings o
             WHERE o.resolved_at IS NULL AND o.repair IN ('requeue', 'apply_reschedule', 'adopt_successor')
             ORDER BY o.id LIMIT p_limit
    LOOP
        PERFORM 1 FROM calsync.reconcile_findings o WHERE o.id = f.id AND o.resolved_at IS NULL FOR UPDATE;
        CONTINUE WHEN NOT FOUND;  -- repaired by a run at the same time
        SELECT calsync.is_bookable_status(a.status)  -- an event of its own (this run's) is no reason to stop
               AND NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = a.id::text
                                 AND e.payload->>'requeued_by_run' IS DISTINCT FROM p_run_id::text) INTO v_ok
        FROM appointments a WHERE a.id = f.appointment_id FOR UPDATE;
        CONTINUE WHEN NOT coalesce(v_ok, false);  -- changed meanwhile: the next reconciliation looks again
        IF p_dry_run THEN
            RETURN NEXT ('reconcile', 'reconcile_findings', f.id, 'update',
                         jsonb_build_object('kind', f.kind, 'uid', f.uid, 'appointment_id', f.appointment_id),
                         jsonb_build_object('repair', f.repair, 'detail', f.detail))::remediation.change;
            CONTINUE;
        END IF;
        PERFORM set_config('calsync.writer', 'worker', true);  -- our own changes enqueue nothing by themselves
        IF f.repair = 'apply_reschedule' THEN
            BEGIN
                v_before := (SELECT jsonb_build_object('starts_at', starts_at, 'ends_at', ends_at) FROM appointments
                             WHERE id = f.appointment_id);
                UPDATE appointments SET starts_at = f.calcom_start, ends_at = f.calcom_end, updated_at = p_now
                WHERE id = f.appointment_id;
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'appointment_times', f.appointment_id,
                    'update', v_before, (SELECT jsonb_build_object('starts_at', starts_at, 'ends_at', ends_at)
                                         FROM appointments WHERE id = f.appointment_id));
            EXCEPTION WHEN integrity_constraint_violation OR check_violation OR exclusion_violation
                           OR unique_violation OR raise_exception OR serialization_failure THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_rule = CONSTRAINT_NAME;
                v_before := jsonb_build_object('repair', f.repair, 'detail', f.detail);
                UPDATE calsync.reconcile_findings SET repair = 'person',
                    detail = f.detail || format('; refused by %s: %s; move the appointment in the salon app, or requeue it to move the booking back',
                                                coalesce(nullif(v_rule, ''), 'a rule'), v_message)
                WHERE id = f.id;
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'reconcile_findings', f.id, 'update',
                    v_before, (SELECT jsonb_build_object('repair', repair, 'detail', detail)
                               FROM calsync.reconcile_findings WHERE id = f.id));
                PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
                CONTINUE;
            END;
        END IF;
        IF f.repair IN ('apply_reschedule', 'adopt_successor') THEN
            v_uid := f.successor_uid;
            -- the successor is the booking now: in the worker's record and the app's columns
            v_row := (SELECT to_jsonb(s) FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot);
            INSERT INTO calsync.synced_bookings AS s (appointment_id, slot, uid, booking_id, start_at, end_at, event_type_id, synced_at)
            VALUES (f.appointment_id, f.slot, f.successor_uid, f.successor_booking_id, f.calcom_start, f.calcom_end,
                    f.event_type_id, p_now)
            ON CONFLICT (appointment_id, slot) DO UPDATE
                SET uid = excluded.uid, booking_id = excluded.booking_id, start_at = excluded.start_at,
                    end_at = excluded.end_at, event_type_id = coalesce(excluded.event_type_id, s.event_type_id),
                    synced_at = excluded.synced_at;
            RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'synced_bookings', f.appointment_id,
                CASE WHEN v_row IS NULL THEN 'insert' ELSE 'update' END, v_row,
                (SELECT to_jsonb(s) FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot));
            IF f.slot = 0 THEN
                v_change := remediation.change_appointment(p_run_id, 'reconcile', p_reason, f.appointment_id,
                    jsonb_build_object('calcom_v2_booking_uid', f.successor_uid,
                                       'calcom_v2_booking_id', f.successor_booking_id::text,
                                       'calcom_booking_id', f.successor_booking_id, 'calcom_sync_status', 'synced'),
                    false, 'true');
                RETURN NEXT v_change;
            ELSE
                RETURN NEXT remediation.reconcile_set_phase_booking(p_run_id, p_reason, f.slot, f.successor_uid,
                                                                    f.successor_booking_id, 'synced');
            END IF;
        ELSE  -- requeue
            v_row := (SELECT to_jsonb(s) FROM calsync.synced_bookings s
                      WHERE s.appointment_id = f.appointment_id AND s.slot = coalesce(f.slot, 0));
            IF f.kind = 'orphan_here' THEN
                -- lost: forget it, so that the worker books again (it would take a recorded uid for a booking)
                IF v_row IS NOT NULL AND v_row->>'uid' = f.uid THEN
                    DELETE FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot;
                    RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'synced_bookings', f.appointment_id,
                                                   'delete', v_row, NULL);
                END IF;
                IF f.slot = 0 THEN
                    v_change := remediation.change_appointment(p_run_id, 'reconcile', p_reason, f.appointment_id,
                        jsonb_build_object('calcom_v2_booking_uid', NULL, 'calcom_v2_booking_id', NULL,
                                           'calcom_booking_id', NULL, 'calcom_sync_status', 'pending'),
                        false, format('a.calcom_v2_booking_uid IS NOT DISTINCT FROM %L OR a.calcom_v2_booking_uid IS NULL', f.uid));
                    IF v_change IS NOT NULL THEN
                        RETURN NEXT v_change;
                    END IF;
                ELSIF EXISTS (SELECT 1 FROM appointment_phases p WHERE p.id = f.slot AND p.calcom_booking_uid = f.uid) THEN
                    RETURN NEXT remediation.reconcile_set_phase_booking(p_run_id, p_reason, f.slot, NULL, NULL, 'pending');
                END IF;
            ELSIF f.kind = 'drift' THEN
                -- what Cal.com has is recorded, so that the worker sees the difference and moves it back
                INSERT INTO calsync.synced_bookings AS s (appointment_id, slot, uid, booking_id, start_at, end_at, event_type_id, synced_at)
                VALUES (f.appointment_id, f.slot, f.uid, f.booking_id, f.calcom_start, f.calcom_end, f.event_type_id, p_now)
                ON CONFLICT (appointment_id, slot) DO UPDATE
                    SET start_at = excluded.start_at, end_at = excluded.end_at, synced_at = excluded.synced_at;
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'synced_bookings', f.appointment_id,
                    CASE WHEN v_row IS NULL THEN 'insert' ELSE 'update' END, v_row,
                    (SELECT to_jsonb(s) FROM calsync.synced_bookings s WHERE s.appointment_id = f.appointment_id AND s.slot = f.slot));
            END IF;
            IF f.kind <> 'orphan_here' OR f.slot <> 0 THEN
                v_change := remediation.change_appointment(p_run_id, 'reconcile', p_reason, f.appointment_id,
                    jsonb_build_object('calcom_sync_status', 'pending'), false, 'true');
                RETURN NEXT v_change;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM calsync.outbox e WHERE e.aggregateid = f.appointment_id::text
                             AND e.payload->>'requeued_by_run' = p_run_id::text) THEN  -- one event per appointment
                v_event := calsync.enqueue_sync(f.appointment_id, CASE WHEN f.kind = 'drift' THEN 'reschedule' ELSE 'create' END,
                    jsonb_build_object('appointment_id', f.appointment_id, 'requeued_by_run', p_run_id, 'reconcile', f.kind));
                RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'outbox', f.appointment_id, 'insert', NULL,
                                               jsonb_build_object('outbox_id', v_event, 'category', 'RECONCILE'));
            END IF;
        END IF;
        v_before := (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
                     FROM calsync.reconcile_findings WHERE id = f.id);
        UPDATE calsync.reconcile_findings SET resolved_at = p_now, resolved_by = p_run_id,
            resolution = format('repaired (%s) by run %s', f.repair, p_run_id)
        WHERE id = f.id;
        RETURN NEXT remediation.record(p_run_id, 'reconcile', p_reason, 'reconcile_findings', f.id, 'update', v_before,
            (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
             FROM calsync.reconcile_findings WHERE id = f.id));
        PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.repair_reconcile_findings(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer, p_now timestamp with time zone) IS 'Runbook step reconcile: requeue lost and drifted bookings, apply outside reschedules the integrity rules accept, adopt successors; logged, undone by remediation.undo_reconcile.';

CREATE FUNCTION remediation.requeue_failures(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer, p_categories text[] DEFAULT NULL::text[], p_now timestamp with time zone DEFAULT now()) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    r record;
    v_change remediation.change;
    v_event uuid;
BEGIN
    FOR r IN SELECT f.appointment_id, f.category FROM remediation.failed_syncs f
             JOIN remediation.categories k ON k.category = f.category
             WHERE f.status IN ('pending', 'confirmed', 'scheduled', 'booked') AND f.starts_at > p_now
               AND remediation.blocking_cause(f.appointment_id) IS NULL
               AND (CASE WHEN p_categories IS NULL THEN k.requeue_when_fixed ELSE f.category = ANY (p_categories) END)
             ORDER BY f.appointment_id LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'requeue', p_reason, r.appointment_id,
            jsonb_build_object('calcom_sync_status', 'pending', 'requires_manual_review', false, 'manual_review_flagged_at', NULL),
            p_dry_run, '(a.calcom_sync_status = ''failed'' OR a.requires_manual_review)');
        CONTINUE WHEN v_change IS NULL;
        RETURN NEXT v_change;
        IF NOT p_dry_run THEN
            UPDATE calsync.outbox_delivery SET status = 'retry', next_attempt_at = p_now, last_error = 'requeued by remediation'
            WHERE status = 'dead' AND aggregateid = r.appointment_id::text;
            v_event := calsync.enqueue_sync(r.appointment_id, 'create',
                jsonb_build_object('appointment_id', r.appointment_id, 'requeued_by_run', p_run_id, 'category', r.category));
            RETURN NEXT remediation.record(p_run_id, 'requeue', p_reason, 'outbox', r.appointment_id, 'insert', NULL,
                                           jsonb_build_object('outbox_id', v_event, 'category', r.category));
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.requeue_failures(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer, p_categories text[], p_now timestamp with time zone) IS 'Runbook step requeue: queue failing upcoming appointments whose cause is fixed for another sync.';

CREATE FUNCTION remediation.resolve_duplicate_bookings(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    g record;
    v_keep appointments%ROWTYPE;
    v_dup bigint;
    v_change remediation.change;
    v_issue bigint;
    v_seen bigint[] := '{}';  -- a row in two groups (same slot and same booking) is handled once
BEGIN
    FOR g IN
        WITH live AS (SELECT * FROM appointments WHERE status NOT IN ('cancelled', 'no_show')),
        groups AS (
            SELECT array_agg(id ORDER BY (calcom_booking_id IS NULL AND calcom_v2_booking_uid IS NULL), id) AS ids,
                   'same customer, start and service' AS why
            FROM live GROUP BY customer_id, starts_at, service_id HAVING count(*) > 1
            UNION ALL
            SELECT array_agg(id ORDER BY id), 'same Cal.com booking ' || calcom_booking_id FROM live
            WHERE calcom_booking_id IS NOT NULL GROUP BY calcom_booking_id HAVING count(*) > 1
            UNION ALL
            SELECT array_agg(id ORDER BY id), 'same Cal.com booking ' || calcom_v2_booking_uid FROM live
            WHERE calcom_v2_booking_uid IS NOT NULL GROUP BY calcom_v2_booking_uid HAVING count(*) > 1
        )
        SELECT * FROM groups ORDER BY ids[1] LIMIT p_limit
    LOOP
        CONTINUE WHEN g.ids <@ v_seen;
        v_seen := v_seen || g.ids;
        SELECT * INTO v_keep FROM appointments WHERE id = g.ids[1];
        IF v_keep.calcom_booking_id IS NOT NULL OR v_keep.calcom_v2_booking_uid IS NOT NULL THEN
            v_change := remediation.change_appointment(p_run_id, 'duplicates', p_reason, v_keep.id,
                jsonb_build_object('calcom_sync_status', 'synced', 'requires_manual_review', false,
                                   'manual_review_flagged_at', NULL, 'sync_error_code', NULL, 'sync_error_message', NULL),
                p_dry_run, format('a.status NOT IN (''cancelled'', ''no_show'') AND (a.calcom_sync_status <> ''synced'' OR a.requires_manual_review)'));
            IF v_change IS NOT NULL THEN
                RETURN NEXT v_change;
            END IF;
        END IF;
        FOREACH v_dup IN ARRAY g.ids[2:] LOOP
            v_change := remediation.change_appointment(p_run_id, 'duplicates', p_reason, v_dup,
                jsonb_build_object(
                    'status', 'cancelled', 'requires_manual_review', false, 'manual_review_flagged_at', NULL,
                    'sync_error_code', 'DOUBLE_BOOKING',
                    'sync_error_message', format('Duplicate of #%s (%s): cancelled by remediation', v_keep.id, g.why))
                || (SELECT CASE WHEN (d.calcom_booking_id IS NOT DISTINCT FROM v_keep.calcom_booking_id OR d.calcom_booking_id IS NULL)
                                 AND (d.calcom_v2_booking_uid IS NOT DISTINCT FROM v_keep.calcom_v2_booking_uid OR d.calcom_v2_booking_uid IS NULL)
                                THEN jsonb_build_object('calcom_booking_id', NULL, 'calcom_v2_booking_uid', NULL,
                                                        'calcom_v2_booking_id', NULL, 'calcom_sync_status', 'synced')
                                ELSE jsonb_build_object('calcom_sync_status', 'pending') END
                    FROM appointments d WHERE d.id = v_dup),
                p_dry_run, 'a.status NOT IN (''cancelled'', ''no_show'')');
            IF v_change IS NOT NULL THEN
                RETURN NEXT v_change;
                IF NOT p_dry_run THEN
                    FOR v_issue IN UPDATE calsync.integrity_issues SET resolved_at = now(), resolved_by = remediation.operator(),
                                          resolution = 'cancelled as a duplicate of #' || v_keep.id
                                   WHERE table_name = 'appointments' AND row_id = v_dup AND resolved_at IS NULL RETURNING id
                    LOOP
                        RETURN NEXT remediation.record(p_run_id, 'duplicates', p_reason, 'integrity_issues', v_issue, 'update',
                            jsonb_build_object('resolved_at', NULL, 'resolved_by', NULL, 'resolution', NULL),
                            (SELECT jsonb_build_object('resolved_at', resolved_at, 'resolved_by', resolved_by, 'resolution', resolution)
                             FROM calsync.integrity_issues WHERE id = v_issue));
                    END LOOP;
                END IF;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.resolve_duplicate_bookings(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer) IS 'Runbook step duplicates (incident fix 3): keep the appointment with the Cal.com booking, cancel the duplicates.';

CREATE FUNCTION remediation.resolve_past_unsynced(p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL::text, p_run_id uuid DEFAULT gen_random_uuid(), p_limit integer DEFAULT NULL::integer, p_mode text DEFAULT 'historical'::text, p_now timestamp with time zone DEFAULT now()) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_id bigint;
    v_change remediation.change;
BEGIN
    IF p_mode NOT IN ('historical', 'cancel') THEN
        RAISE EXCEPTION 'resolve_past_unsynced: p_mode must be historical or cancel, not %', p_mode USING ERRCODE = '22023';
    END IF;
    FOR v_id IN SELECT appointment_id FROM remediation.past_unsynced WHERE ends_at < p_now ORDER BY 1 LIMIT p_limit
    LOOP
        v_change := remediation.change_appointment(p_run_id, 'past', p_reason, v_id,
            CASE WHEN p_mode = 'cancel'
                 THEN jsonb_build_object('status', 'cancelled', 'calcom_sync_status', 'synced', 'requires_manual_review', false,
                                         'manual_review_flagged_at', NULL, 'sync_error_code', 'PAST_APPOINTMENT')
                 ELSE jsonb_build_object('calcom_sync_status', 'orphaned_local', 'requires_manual_review', false,
                                         'manual_review_flagged_at', NULL, 'sync_error_code', 'PAST_APPOINTMENT') END,
            p_dry_run, format('a.calcom_sync_status IN (''failed'', ''pending'') AND a.status NOT IN (''cancelled'', ''no_show'') AND a.ends_at < %L::timestamptz', p_now));
        IF v_change IS NOT NULL THEN
            RETURN NEXT v_change;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.resolve_past_unsynced(p_dry_run boolean, p_reason text, p_run_id uuid, p_limit integer, p_mode text, p_now timestamp with time zone) IS 'Runbook step past (remaining category 1): past appointments that never synced are kept as history (orphaned_local) or cancelled.';

CREATE FUNCTION remediation.tg_appointments__diagnose_failure() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    PERFORM remediation.diagnose_failures(ARRAY[NEW.id]);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION remediation.tg_appointments__diagnose_failure() IS 'Trigger appointments_diagnose_failure: diagnose a failure when it is recorded.';

CREATE FUNCTION remediation.undo(p_run_id uuid, p_reason text DEFAULT NULL::text) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    l remediation.log%ROWTYPE;
    v_undo uuid := gen_random_uuid();
    v_now jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM remediation.log WHERE run_id = p_run_id) THEN
        RAISE EXCEPTION 'remediation.undo: no run %', p_run_id USING ERRCODE = 'P0002',
            HINT = 'List runs with: SELECT * FROM remediation.runs ORDER BY started_at DESC;';
    END IF;
    FOR l IN SELECT * FROM remediation.log WHERE run_id = p_run_id AND undone_by IS NULL ORDER BY id DESC FOR UPDATE
    LOOP
        IF l.action = 'update' AND l.table_name = 'appointments' THEN
            v_now := remediation.appointment_image(l.row_id);
            PERFORM remediation.apply_appointment_image(l.row_id, l.before);
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', v_now, remediation.appointment_image(l.row_id));
        ELSIF l.action = 'update' AND l.table_name = 'customers' THEN
            v_now := (SELECT jsonb_build_object('email', email, 'email_is_placeholder', email_is_placeholder) FROM customers WHERE id = l.row_id);
            UPDATE customers SET email = l.before->>'email', email_is_placeholder = (l.before->>'email_is_placeholder')::boolean
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', v_now, l.before);
        ELSIF l.action = 'update' AND l.table_name = 'integrity_issues' THEN
            UPDATE calsync.integrity_issues SET resolved_at = NULL, resolved_by = NULL, resolution = NULL WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'update', l.after, l.before);
        ELSIF l.action = 'delete' AND l.table_name = 'appointment_phases' THEN
            -- a superseded phase comes back exactly as it was
            INSERT INTO appointment_phases SELECT * FROM jsonb_populate_record(NULL::appointment_phases, l.before);
            DELETE FROM calsync.superseded_phases WHERE id = (l.after->>'superseded_id')::bigint;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'insert', NULL, l.before);
        ELSIF l.action = 'insert' AND l.table_name = 'appointment_phases' THEN
            DELETE FROM appointment_phases WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSIF l.action = 'insert' AND l.table_name = 'integrity_issues' THEN
            DELETE FROM calsync.integrity_issues WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSIF l.action = 'insert' AND l.table_name = 'outbox' THEN
            -- an event the worker has not delivered yet is withdrawn; a delivered one cannot be unsent
            DELETE FROM calsync.outbox o WHERE o.id = (l.after->>'outbox_id')::uuid
              AND NOT EXISTS (SELECT 1 FROM calsync.outbox_delivery d WHERE d.outbox_id = o.id AND d.status = 'running');
            RETURN NEXT remediation.record(v_undo, 'undo', coalesce(p_reason, 'undo of run ' || p_run_id), l.table_name,
                                           l.row_id, 'delete', l.after, NULL);
        ELSE
            -- never marked undone without being reverted: the whole undo stops, nothing of it is kept
            RAISE EXCEPTION 'remediation.undo: run % logged a change it cannot revert (% of % row %)',
                p_run_id, l.action, l.table_name, l.row_id USING ERRCODE = 'P0001',
                HINT = 'A reconcile repair run is undone with remediation.undo_reconcile(run_id) (calsync remediate --undo).';
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
END
$$;

COMMENT ON FUNCTION remediation.undo(p_run_id uuid, p_reason text) IS 'Revert a runbook run from its log (newest change first); the undo is itself logged as a run.';

CREATE FUNCTION remediation.undo_reconcile(p_run_id uuid, p_reason text DEFAULT NULL::text) RETURNS SETOF remediation.change
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    l remediation.log%ROWTYPE;
    v_undo uuid := gen_random_uuid();
    v_reason text := coalesce(p_reason, 'undo of run ' || p_run_id);
    v_writer text := current_setting('calsync.writer', true);
    v_now jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM remediation.log WHERE run_id = p_run_id) THEN
        RAISE EXCEPTION 'remediation.undo_reconcile: no run %', p_run_id USING ERRCODE = 'P0002',
            HINT = 'List runs with: SELECT * FROM remediation.runs ORDER BY started_at DESC;';
    END IF;
    PERFORM set_config('calsync.writer', 'worker', true);
    FOR l IN SELECT * FROM remediation.log
             WHERE run_id = p_run_id AND undone_by IS NULL
               AND (table_name IN ('synced_bookings', 'appointment_times', 'reconcile_findings', 'calcom_bookings')
                    OR (table_name = 'appointment_phases' AND action = 'update'))
             ORDER BY id DESC FOR UPDATE
    LOOP
        IF l.table_name = 'synced_bookings' THEN
            v_now := (SELECT to_jsonb(s) FROM calsync.synced_bookings s
                      WHERE s.appointment_id = l.row_id AND s.slot = (coalesce(l.after, l.before)->>'slot')::bigint);
            DELETE FROM calsync.synced_bookings s
            WHERE s.appointment_id = l.row_id AND s.slot = (coalesce(l.after, l.before)->>'slot')::bigint;
            IF l.before IS NOT NULL THEN
                INSERT INTO calsync.synced_bookings SELECT * FROM jsonb_populate_record(NULL::calsync.synced_bookings, l.before);
            END IF;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id,
                CASE WHEN l.before IS NULL THEN 'delete' WHEN v_now IS NULL THEN 'insert' ELSE 'update' END, v_now, l.before);
        ELSIF l.table_name = 'appointment_times' THEN
            v_now := (SELECT jsonb_build_object('starts_at', starts_at, 'ends_at', ends_at) FROM appointments WHERE id = l.row_id);
            UPDATE appointments SET starts_at = (l.before->>'starts_at')::timestamptz,
                ends_at = (l.before->>'ends_at')::timestamptz, updated_at = now()
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', v_now, l.before);
        ELSIF l.table_name = 'appointment_phases' THEN
            v_now := (SELECT jsonb_build_object('calcom_booking_uid', calcom_booking_uid, 'calcom_booking_id', calcom_booking_id,
                                                'calcom_sync_status', calcom_sync_status) FROM appointment_phases WHERE id = l.row_id);
            UPDATE appointment_phases SET calcom_booking_uid = l.before->>'calcom_booking_uid',
                calcom_booking_id = (l.before->>'calcom_booking_id')::bigint,
                calcom_sync_status = l.before->>'calcom_sync_status', updated_at = now()
            WHERE id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', v_now, l.before);
        ELSIF l.table_name = 'reconcile_findings' THEN
            v_now := (SELECT to_jsonb(o) FROM calsync.reconcile_findings o WHERE o.id = l.row_id);
            UPDATE calsync.reconcile_findings o SET
                resolved_at = CASE WHEN l.before ? 'resolved_at' THEN (l.before->>'resolved_at')::timestamptz ELSE o.resolved_at END,
                resolved_by = CASE WHEN l.before ? 'resolved_by' THEN (l.before->>'resolved_by')::uuid ELSE o.resolved_by END,
                resolution = CASE WHEN l.before ? 'resolution' THEN l.before->>'resolution' ELSE o.resolution END,
                repair = CASE WHEN l.before ? 'repair' THEN l.before->>'repair' ELSE o.repair END,
                detail = CASE WHEN l.before ? 'detail' THEN l.before->>'detail' ELSE o.detail END
            WHERE o.id = l.row_id;
            RETURN NEXT remediation.record(v_undo, 'undo', v_reason, l.table_name, l.row_id, 'update', l.after, l.before);
        ELSE  -- calcom_bookings: Cal.com cannot un-cancel a booking
            RETURN NEXT remediation.record(v_undo, 'undo', 'not reverted: Cal.com keeps booking ' || (l.after->>'uid')
                                           || ' cancelled (' || v_reason || ')', l.table_name, l.row_id, 'update', l.after, l.after);
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
    RETURN QUERY SELECT * FROM remediation.undo(p_run_id, p_reason);
    PERFORM set_config('calsync.writer', coalesce(v_writer, ''), true);
END
$$;

COMMENT ON FUNCTION remediation.undo_reconcile(p_run_id uuid, p_reason text) IS 'Revert a reconcile repair run from its log: the worker''s record, times, phase bookings and findings here, the rest by remediation.undo; Cal.com cancellations are logged as not reverted.';

CREATE TABLE calsync.company_settings (
    company_id bigint NOT NULL,
    phone_region text,
    language text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT company_settings_language_is_a_calcom_language_code CHECK ((language ~ '^[a-z]{2}(-([A-Z]{2}|[0-9]{3}))?$'::text)),
    CONSTRAINT company_settings_phone_region_is_iso_3166_alpha2 CHECK ((phone_region ~ '^[A-Z]{2}$'::text))
);

COMMENT ON TABLE calsync.company_settings IS 'Per salon (company): how its bookings are sent to Cal.com. No row, or NULL in a column: the worker''s default.';

COMMENT ON COLUMN calsync.company_settings.company_id IS 'the company (salon)';

COMMENT ON COLUMN calsync.company_settings.phone_region IS 'ISO 3166 alpha-2 country for national phone formats (030 1234567 in DE is +49301234567); NULL: CALSYNC_PHONE_REGION (default DE)';

COMMENT ON COLUMN calsync.company_settings.language IS 'language of Cal.com''s e-mails to the attendee (a Cal.com language code: de, en, pt-BR, es-419, …); NULL: de';

COMMENT ON COLUMN calsync.company_settings.updated_at IS 'when the row was last changed (set it when you change it)';

CREATE TABLE calsync.foreign_calcom_bookings (
    uid text NOT NULL,
    booking_id bigint,
    event_type_id bigint,
    start_time timestamp with time zone,
    end_time timestamp with time zone,
    title text,
    status text NOT NULL,
    rescheduled_to_uid text,
    cancellation_reason text,
    listed_at timestamp with time zone NOT NULL,
    changed_at timestamp with time zone NOT NULL,
    delivery_id bigint,
    CONSTRAINT foreign_calcom_bookings_status_known CHECK ((status = ANY (ARRAY['accepted'::text, 'cancelled'::text, 'rescheduled'::text])))
);

COMMENT ON TABLE calsync.foreign_calcom_bookings IS 'Cal.com bookings without an appointment of ours, listed from webhooks (never imported); followed through reschedules and cancels.';

CREATE TABLE calsync.host_busy_time (
    appointment_id bigint NOT NULL,
    staff_id uuid NOT NULL,
    host_id bigint NOT NULL,
    busy tstzmultirange NOT NULL
);

COMMENT ON TABLE calsync.host_busy_time IS 'Staff-required time of every live appointment with a host, one row each, kept by triggers; host_busy_time_no_overlap forbids double booking.';

COMMENT ON COLUMN calsync.host_busy_time.host_id IS 'calsync.host_id(): the Cal.com user id, else a negative hash of the staff row';

COMMENT ON COLUMN calsync.host_busy_time.busy IS 'the appointment''s staff-required time: its phases that need staff, else its whole time';

ALTER TABLE calsync.integrity_issues ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME calsync.integrity_issues_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE calsync.key_problems (
    id bigint NOT NULL,
    key_ref text NOT NULL,
    category text NOT NULL,
    message text NOT NULL,
    first_seen timestamp with time zone NOT NULL,
    last_seen timestamp with time zone NOT NULL,
    reported_by text,
    resolved_at timestamp with time zone
);

COMMENT ON TABLE calsync.key_problems IS 'Cal.com keys (or base URLs) Cal.com refuses: the worker pauses them and reports here; resolved, never deleted.';

COMMENT ON COLUMN calsync.key_problems.key_ref IS 'which key, by name (default, or a company), never the key itself';

COMMENT ON COLUMN calsync.key_problems.category IS 'AUTH, ROUTE_NOT_FOUND or REDIRECTED (remediation.categories.scope = key)';

ALTER TABLE calsync.key_problems ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME calsync.key_problems_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE calsync.outbox (
    id uuid DEFAULT calsync.time_ordered_uuid() NOT NULL,
    aggregatetype text NOT NULL,
    aggregateid text NOT NULL,
    type text NOT NULL,
    payload jsonb,
    seq bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    company_id bigint,
    CONSTRAINT outbox_type_known CHECK ((type = ANY (ARRAY['create'::text, 'cancel'::text, 'reschedule'::text])))
)
WITH (autovacuum_vacuum_scale_factor='0.01', autovacuum_vacuum_cost_delay='0');

COMMENT ON TABLE calsync.outbox IS 'Sync intents, written in the booking''s transaction; insert-only (Debezium outbox router shape). Delivered rows are deleted.';

COMMENT ON COLUMN calsync.outbox.aggregateid IS 'the appointment id';

COMMENT ON COLUMN calsync.outbox.type IS 'create, cancel or reschedule';

COMMENT ON COLUMN calsync.outbox.seq IS 'enqueue order; events of one appointment are delivered in this order';

COMMENT ON COLUMN calsync.outbox.company_id IS 'the appointment''s company when enqueued (calsync.tg_outbox__record_company): the claim shares the work out by it';

CREATE TABLE calsync.outbox_listeners (
    worker_id text NOT NULL,
    idle boolean DEFAULT false NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL,
    token_hash bytea
);

COMMENT ON TABLE calsync.outbox_listeners IS 'Workers listening on channel calsync_outbox; enqueueing notifies only while one of them is idle.';

COMMENT ON COLUMN calsync.outbox_listeners.token_hash IS 'SHA-256 of the secret the worker''s sessions present in calsync.worker_token (calsync.authenticate_worker); NULL: registered by an admin without one';

ALTER TABLE calsync.outbox ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME calsync.outbox_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE calsync.rate_limits (
    key_ref text NOT NULL,
    next_slot_at timestamp with time zone NOT NULL,
    paused_until timestamp with time zone,
    rate_limit bigint DEFAULT 120 NOT NULL,
    rate_window interval DEFAULT '00:01:00'::interval NOT NULL,
    granted bigint DEFAULT 0 NOT NULL,
    delayed bigint DEFAULT 0 NOT NULL,
    refused bigint DEFAULT 0 NOT NULL,
    wait_s double precision DEFAULT 0 NOT NULL,
    pauses bigint DEFAULT 0 NOT NULL,
    last_pause_reason text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rate_limits_key_ref_names_no_key CHECK (((key_ref = 'default'::text) OR (key_ref ~ '^company:[0-9]+$'::text)))
);

COMMENT ON TABLE calsync.rate_limits IS 'One shared request schedule per Cal.com key for every worker (calsync.take_rate_slots, calsync.pause_rate_limit).';

COMMENT ON COLUMN calsync.rate_limits.key_ref IS 'which key, by name (default, or company:<id>), never the key itself';

COMMENT ON COLUMN calsync.rate_limits.next_slot_at IS 'the first request slot not yet handed out to a worker';

COMMENT ON COLUMN calsync.rate_limits.paused_until IS 'no slot before this (Cal.com answered 429 to some worker)';

COMMENT ON CONSTRAINT rate_limits_key_ref_names_no_key ON calsync.rate_limits IS 'A key is named (default or company:<id>), never stored: pass the key_ref, not the key.';

CREATE TABLE calsync.reconcile_findings (
    id bigint NOT NULL,
    kind text NOT NULL,
    uid text NOT NULL,
    booking_id bigint,
    appointment_id bigint,
    slot bigint,
    repair text NOT NULL,
    detail text NOT NULL,
    successor_uid text,
    successor_booking_id bigint,
    calcom_start timestamp with time zone,
    calcom_end timestamp with time zone,
    our_start timestamp with time zone,
    our_end timestamp with time zone,
    event_type_id bigint,
    found_by uuid NOT NULL,
    found_at timestamp with time zone NOT NULL,
    last_seen_by uuid NOT NULL,
    last_seen_at timestamp with time zone NOT NULL,
    resolved_at timestamp with time zone,
    resolved_by uuid,
    resolution text,
    CONSTRAINT reconcile_findings_kind_known CHECK ((kind = ANY (ARRAY['orphan_at_calcom'::text, 'orphan_here'::text, 'drift'::text]))),
    CONSTRAINT reconcile_findings_repair_known CHECK ((repair = ANY (ARRAY['cancel_at_calcom'::text, 'requeue'::text, 'apply_reschedule'::text, 'adopt_successor'::text, 'person'::text]))),
    CONSTRAINT reconcile_findings_resolution_needs_time CHECK (((resolved_at IS NULL) = (resolution IS NULL)))
);

COMMENT ON TABLE calsync.reconcile_findings IS 'What `calsync reconcile` found between Cal.com and the appointments synced here; resolved (repaired, or not found again), never deleted.';

COMMENT ON COLUMN calsync.reconcile_findings.kind IS 'orphan_at_calcom: a live booking no live appointment holds; orphan_here: our booking Cal.com lost or cancelled; drift: time or length differ';

COMMENT ON COLUMN calsync.reconcile_findings.slot IS '0: the appointment''s own booking; else the phase id (calsync.synced_bookings.slot)';

COMMENT ON COLUMN calsync.reconcile_findings.repair IS 'what --repair does: cancel_at_calcom, requeue, apply_reschedule, adopt_successor; person: nothing, a person decides';

ALTER TABLE calsync.reconcile_findings ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME calsync.reconcile_findings_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE calsync.settings (
    key text NOT NULL,
    value text NOT NULL,
    description text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

COMMENT ON TABLE calsync.settings IS 'Settings the calsync rules read; change a value with UPDATE.';

CREATE TABLE calsync.superseded_phases (
    id bigint NOT NULL,
    phase_id bigint NOT NULL,
    appointment_id bigint NOT NULL,
    sequence_order bigint,
    phase_type text,
    segment_key text,
    segment_name text,
    staff_required boolean,
    start_time timestamp with time zone,
    end_time timestamp with time zone,
    calcom_booking_id bigint,
    calcom_booking_uid text,
    calcom_sync_status text,
    superseded_at timestamp with time zone DEFAULT now() NOT NULL,
    reason text NOT NULL,
    calcom_cancelled_at timestamp with time zone
);

COMMENT ON TABLE calsync.superseded_phases IS 'Phases replaced when an appointment changed service, kept with their Cal.com bookings (which the sync must cancel).';

COMMENT ON COLUMN calsync.superseded_phases.calcom_cancelled_at IS 'when the sync cancelled the phase''s Cal.com booking; NULL while it is to do';

ALTER TABLE calsync.superseded_phases ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME calsync.superseded_phases_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE calsync.sync_attempts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME calsync.sync_attempts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE calsync.synced_bookings (
    appointment_id bigint NOT NULL,
    slot bigint NOT NULL,
    uid text NOT NULL,
    booking_id bigint,
    start_at timestamp with time zone,
    end_at timestamp with time zone,
    event_type_id bigint,
    synced_at timestamp with time zone NOT NULL
);

COMMENT ON TABLE calsync.synced_bookings IS 'The Cal.com bookings the worker made or adopted for each appointment (slot 0) and phase (slot = phase id).';

CREATE TABLE calsync.webhook_deliveries (
    id bigint NOT NULL,
    received_at timestamp with time zone NOT NULL,
    company_id bigint,
    event_key text NOT NULL,
    trigger_event text NOT NULL,
    booking_uid text,
    event calsync.webhook_event NOT NULL,
    body text NOT NULL,
    body_size bigint NOT NULL,
    headers jsonb NOT NULL,
    signature text NOT NULL,
    outcome text NOT NULL,
    detail text,
    appointment_id bigint,
    duplicate_of bigint,
    waiting_for text,
    attempts bigint DEFAULT 1 NOT NULL,
    next_attempt_at timestamp with time zone,
    decided_at timestamp with time zone,
    CONSTRAINT webhook_deliveries_outcome_known CHECK ((outcome = ANY (ARRAY['applied'::text, 'already_applied'::text, 'duplicate'::text, 'ignored'::text, 'listed'::text, 'parked'::text, 'conflict'::text, 'refused'::text, 'stale'::text, 'unmatched'::text]))),
    CONSTRAINT webhook_deliveries_parked_has_a_next_attempt CHECK (((outcome <> 'parked'::text) OR (next_attempt_at IS NOT NULL))),
    CONSTRAINT webhook_deliveries_signature_checked CHECK ((signature = ANY (ARRAY['valid'::text, 'unsigned'::text])))
);

COMMENT ON TABLE calsync.webhook_deliveries IS 'Every authentic Cal.com webhook delivery (calsync.receive_webhook): raw body, headers without secrets, outcome. Kept, never deleted.';

COMMENT ON COLUMN calsync.webhook_deliveries.event_key IS 'what makes two deliveries the same event: trigger:uid for booking triggers (a uid is created, rescheduled to and cancelled once), else sha256:<hex of the body>';

COMMENT ON COLUMN calsync.webhook_deliveries.event IS 'what the receiver read from the body (worker/webhooks/contract.py)';

COMMENT ON COLUMN calsync.webhook_deliveries.body IS 'the raw body as received (UTF-8 JSON)';

COMMENT ON COLUMN calsync.webhook_deliveries.headers IS 'the request headers without the signature or anything secret';

COMMENT ON COLUMN calsync.webhook_deliveries.signature IS 'valid (HMAC checked) or unsigned (accepted by CALSYNC_WEBHOOK_ALLOW_UNSIGNED)';

COMMENT ON COLUMN calsync.webhook_deliveries.outcome IS 'applied, already_applied, duplicate, ignored, listed, parked, conflict, refused, stale or unmatched (calsync.apply_webhook)';

COMMENT ON COLUMN calsync.webhook_deliveries.duplicate_of IS 'a redelivery: the first delivery of the same event';

COMMENT ON COLUMN calsync.webhook_deliveries.waiting_for IS 'parked: the booking uid it waits for, when that is what it waits for';

ALTER TABLE calsync.webhook_deliveries ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME calsync.webhook_deliveries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE SEQUENCE public.appointment_phases_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.appointment_phases_id_seq OWNED BY public.appointment_phases.id;

CREATE SEQUENCE public.appointments_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.appointments_id_seq OWNED BY public.appointments.id;

CREATE TABLE public.branches (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    company_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.calcom_event_map (
    id bigint NOT NULL,
    service_id bigint NOT NULL,
    segment_key character varying(50) NOT NULL,
    staff_id uuid NOT NULL,
    event_type_id bigint NOT NULL,
    child_event_type_id bigint
);

CREATE SEQUENCE public.calcom_event_map_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.calcom_event_map_id_seq OWNED BY public.calcom_event_map.id;

CREATE TABLE public.companies (
    id bigint NOT NULL,
    name character varying(255) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.companies_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.companies_id_seq OWNED BY public.companies.id;

CREATE SEQUENCE public.customers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.customers_id_seq OWNED BY public.customers.id;

CREATE SEQUENCE public.services_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.services_id_seq OWNED BY public.services.id;

CREATE VIEW remediation.appointments_without_service AS
 SELECT a.id AS appointment_id,
    a.customer_id,
    a.starts_at,
    a.status,
    a.calcom_sync_status
   FROM public.appointments a
  WHERE ((a.service_id IS NULL) AND ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])));

COMMENT ON VIEW remediation.appointments_without_service IS 'Live appointments without a service (like the incident''s #15): cancel them or set the service.';

COMMENT ON COLUMN remediation.appointments_without_service.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.appointments_without_service.customer_id IS 'its customer';

COMMENT ON COLUMN remediation.appointments_without_service.starts_at IS 'its start';

COMMENT ON COLUMN remediation.appointments_without_service.status IS 'its status';

COMMENT ON COLUMN remediation.appointments_without_service.calcom_sync_status IS 'its sync status';

CREATE VIEW remediation.broken_phases AS
 SELECT p.appointment_id,
    p.id AS phase_id,
    p.sequence_order,
        CASE
            WHEN (p.sequence_order IS NULL) THEN 'no sequence_order'::text
            WHEN (p.segment_key IS NULL) THEN 'no segment_key'::text
            WHEN (p.duration_minutes <= 0) THEN 'duration is not positive'::text
            WHEN (p.start_time <> (a.starts_at + make_interval(mins => p.start_offset_minutes))) THEN 'start_time does not follow the appointment''s start and the phase offset'::text
            ELSE 'another phase has the same sequence_order'::text
        END AS problem
   FROM (public.appointment_phases p
     JOIN public.appointments a ON ((a.id = p.appointment_id)))
  WHERE ((p.sequence_order IS NULL) OR (p.segment_key IS NULL) OR (p.duration_minutes <= 0) OR (p.start_time <> (a.starts_at + make_interval(mins => p.start_offset_minutes))) OR (EXISTS ( SELECT 1
           FROM public.appointment_phases q
          WHERE ((q.appointment_id = p.appointment_id) AND (q.sequence_order = p.sequence_order) AND (q.id <> p.id)))));

COMMENT ON VIEW remediation.broken_phases IS 'Phases the sync cannot use (fields missing, time not following the appointment, sequence taken twice); the runbook step broken_phases derives them again.';

COMMENT ON COLUMN remediation.broken_phases.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.broken_phases.phase_id IS 'the phase';

COMMENT ON COLUMN remediation.broken_phases.sequence_order IS 'its place in the sequence';

COMMENT ON COLUMN remediation.broken_phases.problem IS 'what is wrong with it, in words';

CREATE VIEW remediation.calcom_bookings_without_appointment AS
 SELECT b.uid,
    b.booking_id,
    b.event_type_id,
    b.start_time,
    b.end_time,
    b.listed_at,
    b.changed_at,
    b.delivery_id,
    ('Made at Cal.com, not in the app: enter it in the app if the salon''s calendar must hold it (then cancel '::text || 'this one at Cal.com), or leave it at Cal.com only'::text) AS recommended_action
   FROM calsync.foreign_calcom_bookings b
  WHERE (b.status = 'accepted'::text);

COMMENT ON VIEW remediation.calcom_bookings_without_appointment IS 'Live Cal.com bookings without an appointment of ours (from BOOKING_CREATED webhooks), listed, not imported.';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.uid IS 'the booking''s Cal.com uid';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.booking_id IS 'its numeric Cal.com id';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.event_type_id IS 'its Cal.com event type';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.start_time IS 'when it starts';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.end_time IS 'when it ends';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.listed_at IS 'when the webhook listed it';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.changed_at IS 'when a webhook last changed it';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.delivery_id IS 'the last delivery about it (calsync.webhook_deliveries)';

COMMENT ON COLUMN remediation.calcom_bookings_without_appointment.recommended_action IS 'what to do';

CREATE VIEW remediation.composites_without_phases AS
 SELECT composites_without_phases_without_jit.appointment_id,
    composites_without_phases_without_jit.service_id,
    composites_without_phases_without_jit.service_name,
    composites_without_phases_without_jit.starts_at,
    composites_without_phases_without_jit.status,
    composites_without_phases_without_jit.staff_id,
    composites_without_phases_without_jit.segments_problem
   FROM remediation.composites_without_phases_without_jit() composites_without_phases_without_jit(appointment_id, service_id, service_name, starts_at, status, staff_id, segments_problem);

COMMENT ON VIEW remediation.composites_without_phases IS 'Unsettled live composite appointments (remediation.unsettled_appointments, from 30 days ago on) that have no phases, so they cannot be synced. Since revision 0011 a composite gets its phases when it is saved.';

COMMENT ON COLUMN remediation.composites_without_phases.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.composites_without_phases.service_id IS 'its composite service';

COMMENT ON COLUMN remediation.composites_without_phases.service_name IS 'the service''s name';

COMMENT ON COLUMN remediation.composites_without_phases.starts_at IS 'its start';

COMMENT ON COLUMN remediation.composites_without_phases.status IS 'its status';

COMMENT ON COLUMN remediation.composites_without_phases.staff_id IS 'its staff row (NULL: nobody to do the work)';

COMMENT ON COLUMN remediation.composites_without_phases.segments_problem IS 'why phases cannot be derived from the service, or NULL when they can';

CREATE VIEW remediation.customers_missing_contact AS
 SELECT c.id AS customer_id,
    c.name,
    c.email,
    c.phone,
    c.source,
    (( SELECT count(*) AS count
           FROM public.appointments a
          WHERE ((a.customer_id = c.id) AND ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])) AND (a.starts_at >= now()))))::integer AS upcoming_appointments
   FROM public.customers c
  WHERE ((NOT calsync.is_usable_email((c.email)::text)) AND (NOT calsync.is_usable_phone((c.phone)::text)) AND (c.deleted_at IS NULL));

COMMENT ON VIEW remediation.customers_missing_contact IS 'Customers with no usable e-mail and no usable phone (NULL, blank or anonymous_…): Cal.com refuses their bookings.';

COMMENT ON COLUMN remediation.customers_missing_contact.customer_id IS 'the customer';

COMMENT ON COLUMN remediation.customers_missing_contact.name IS 'the customer''s name';

COMMENT ON COLUMN remediation.customers_missing_contact.email IS 'the e-mail (NULL or blank)';

COMMENT ON COLUMN remediation.customers_missing_contact.phone IS 'the phone (NULL, blank or the voice agent''s anonymous_<ts>_<hash>)';

COMMENT ON COLUMN remediation.customers_missing_contact.source IS 'where the customer came from';

COMMENT ON COLUMN remediation.customers_missing_contact.upcoming_appointments IS 'their live appointments still to come';

CREATE VIEW remediation.customers_with_invalid_contact AS
 WITH findings AS (
         SELECT c.id AS customer_id,
            c.company_id,
            'email'::text AS field,
            (c.email)::text AS stored_value,
                CASE
                    WHEN (length((c.email)::text) > 254) THEN 'longer than 254 characters'::text
                    WHEN ((c.email)::text ~ '^\s|\s$'::text) THEN 'a space or line break before or after the address (Cal.com does not trim)'::text
                    WHEN ((c.email)::text ~ '\s'::text) THEN 'a space or line break inside the address'::text
                    WHEN (strpos((c.email)::text, '@'::text) = 0) THEN 'no @'::text
                    WHEN ((c.email)::text ~ '@.*@'::text) THEN 'more than one @'::text
                    WHEN ((c.email)::text ~ '[^ -~]'::text) THEN 'characters other than ASCII (Cal.com accepts ASCII addresses only)'::text
                    WHEN ((c.email)::text !~ '@.*\.[A-Za-z]{2,}$'::text) THEN 'the domain does not end in a top-level domain of two or more letters'::text
                    ELSE 'not an address Cal.com accepts (its e-mail rule, calsync.is_usable_email)'::text
                END AS reason,
            'calsync.is_usable_email'::text AS found_by,
            NULL::timestamp with time zone AS found_at,
            'correct the e-mail (it is kept; bookings use the placeholder meanwhile)'::text AS recommended_action
           FROM public.customers c
          WHERE ((c.deleted_at IS NULL) AND calsync.has_email((c.email)::text) AND (NOT calsync.is_usable_email((c.email)::text)))
        UNION ALL
         SELECT c.id,
            c.company_id,
            'phone'::text,
            (c.phone)::text AS phone,
            i.detail,
            i.found_by,
            i.found_at,
            ('correct the phone: an international number (+49 …) or one valid in the salon''s region '::text || '(calsync.company_settings.phone_region); bookings are sent without it meanwhile'::text)
           FROM (calsync.integrity_issues i
             JOIN public.customers c ON ((c.id = i.row_id)))
          WHERE ((i.rule = 'customers_phone_valid_for_calcom'::text) AND (i.table_name = 'customers'::text) AND (i.resolved_at IS NULL) AND (c.deleted_at IS NULL))
        )
 SELECT f.customer_id,
    f.company_id,
    f.field,
    f.stored_value,
    f.reason,
    f.found_by,
    f.found_at,
    a.appointments,
    a.next_starts_at,
    f.recommended_action
   FROM (findings f
     CROSS JOIN LATERAL ( SELECT (count(*))::integer AS appointments,
            min(x.starts_at) FILTER (WHERE (x.starts_at >= now())) AS next_starts_at
           FROM public.appointments x
          WHERE ((x.customer_id = f.customer_id) AND ((x.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])) AND (((x.calcom_sync_status)::text <> 'synced'::text) OR (x.starts_at >= now())))) a)
  WHERE (a.appointments > 0);

COMMENT ON VIEW remediation.customers_with_invalid_contact IS 'One row per customer and contact field that Cal.com would refuse (an e-mail present but not accepted, a phone the worker found invalid), for customers with a live appointment not synced yet or still to come. The stored value is kept: correct it.';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.customer_id IS 'the customer';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.company_id IS 'the customer''s company (salon)';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.field IS 'which contact: email or phone';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.stored_value IS 'the value as stored (kept as it is; never sent to Cal.com)';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.reason IS 'why Cal.com refuses it, in words';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.found_by IS 'calsync.is_usable_email (checked now, in SQL) or worker (a phone checked with libphonenumber at a sync)';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.found_at IS 'when the worker found it (NULL for e-mails: checked as you read)';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.appointments IS 'the customer''s live appointments not synced yet or still to come';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.next_starts_at IS 'the first of them still to come (NULL: only past ones are unsynced)';

COMMENT ON COLUMN remediation.customers_with_invalid_contact.recommended_action IS 'what to do, in words';

CREATE VIEW remediation.dead_letters AS
 SELECT d.outbox_id,
    (d.aggregateid)::bigint AS appointment_id,
    o.type,
    d.attempts,
    d.last_category,
    d.last_error,
    o.created_at,
    d.processed_at AS died_at,
    k.recommended_action
   FROM ((calsync.outbox_delivery d
     JOIN calsync.outbox o ON ((o.id = d.outbox_id)))
     LEFT JOIN remediation.categories k ON ((k.category = d.last_category)))
  WHERE (d.status = 'dead'::text);

COMMENT ON VIEW remediation.dead_letters IS 'Outbox events given up on (a terminal error, or out of attempts); their appointments are flagged for review.';

COMMENT ON COLUMN remediation.dead_letters.outbox_id IS 'the event';

COMMENT ON COLUMN remediation.dead_letters.appointment_id IS 'its appointment';

COMMENT ON COLUMN remediation.dead_letters.type IS 'create, cancel or reschedule';

COMMENT ON COLUMN remediation.dead_letters.attempts IS 'attempts made';

COMMENT ON COLUMN remediation.dead_letters.last_category IS 'the category of the last failure';

COMMENT ON COLUMN remediation.dead_letters.last_error IS 'the last failure in full';

COMMENT ON COLUMN remediation.dead_letters.created_at IS 'when it was enqueued';

COMMENT ON COLUMN remediation.dead_letters.died_at IS 'when it was given up on';

COMMENT ON COLUMN remediation.dead_letters.recommended_action IS 'what to do, in words';

CREATE VIEW remediation.duplicate_bookings AS
 SELECT duplicate_bookings_without_jit.appointment_id,
    duplicate_bookings_without_jit.customer_id,
    duplicate_bookings_without_jit.starts_at,
    duplicate_bookings_without_jit.service_id,
    duplicate_bookings_without_jit.calcom_booking_id,
    duplicate_bookings_without_jit.calcom_v2_booking_uid,
    duplicate_bookings_without_jit.status,
    duplicate_bookings_without_jit.calcom_sync_status,
    duplicate_bookings_without_jit.duplicates_of,
    duplicate_bookings_without_jit.reason
   FROM remediation.duplicate_bookings_without_jit() duplicate_bookings_without_jit(appointment_id, customer_id, starts_at, service_id, calcom_booking_id, calcom_v2_booking_uid, status, calcom_sync_status, duplicates_of, reason);

COMMENT ON VIEW remediation.duplicate_bookings IS 'Live appointments that are one booking twice (same customer, start and service, or same Cal.com booking), found from the unsettled ones (remediation.unsettled_appointments, from 30 days ago on) and listed with every appointment they share it with.';

COMMENT ON COLUMN remediation.duplicate_bookings.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.duplicate_bookings.customer_id IS 'its customer';

COMMENT ON COLUMN remediation.duplicate_bookings.starts_at IS 'its start';

COMMENT ON COLUMN remediation.duplicate_bookings.service_id IS 'its service';

COMMENT ON COLUMN remediation.duplicate_bookings.calcom_booking_id IS 'its Cal.com booking id';

COMMENT ON COLUMN remediation.duplicate_bookings.calcom_v2_booking_uid IS 'its Cal.com booking uid';

COMMENT ON COLUMN remediation.duplicate_bookings.status IS 'its status';

COMMENT ON COLUMN remediation.duplicate_bookings.calcom_sync_status IS 'its sync status';

COMMENT ON COLUMN remediation.duplicate_bookings.duplicates_of IS 'the other live appointments it duplicates';

COMMENT ON COLUMN remediation.duplicate_bookings.reason IS 'what they share (several reasons separated by ; )';

CREATE VIEW remediation.failed_syncs AS
 SELECT failed_syncs_without_jit.appointment_id,
    failed_syncs_without_jit.customer_id,
    failed_syncs_without_jit.customer_name,
    failed_syncs_without_jit.starts_at,
    failed_syncs_without_jit.status,
    failed_syncs_without_jit.category,
    failed_syncs_without_jit.retryable,
    failed_syncs_without_jit.last_error,
    failed_syncs_without_jit.error_code,
    failed_syncs_without_jit.error_detail,
    failed_syncs_without_jit.attempts,
    failed_syncs_without_jit.first_failure_at,
    failed_syncs_without_jit.last_failure_at,
    failed_syncs_without_jit.requires_manual_review,
    failed_syncs_without_jit.outbox_status,
    failed_syncs_without_jit.recommended_action,
    failed_syncs_without_jit.runbook_step
   FROM remediation.failed_syncs_without_jit() failed_syncs_without_jit(appointment_id, customer_id, customer_name, starts_at, status, category, retryable, last_error, error_code, error_detail, attempts, first_failure_at, last_failure_at, requires_manual_review, outbox_status, recommended_action, runbook_step);

COMMENT ON VIEW remediation.failed_syncs IS 'One row per appointment whose sync is failing (calcom_sync_status failed, or flagged for manual review), with why and what to do.';

COMMENT ON COLUMN remediation.failed_syncs.appointment_id IS 'the failing appointment';

COMMENT ON COLUMN remediation.failed_syncs.customer_id IS 'its customer';

COMMENT ON COLUMN remediation.failed_syncs.customer_name IS 'the customer''s name';

COMMENT ON COLUMN remediation.failed_syncs.starts_at IS 'when the appointment starts';

COMMENT ON COLUMN remediation.failed_syncs.status IS 'the appointment''s status';

COMMENT ON COLUMN remediation.failed_syncs.category IS 'why it fails (remediation.categories): the worker''s verdict, else the diagnosis made when the failure was recorded (remediation.failure_diagnoses), else what the data shows now';

COMMENT ON COLUMN remediation.failed_syncs.retryable IS 'true when retrying can succeed without a change (a transient cause)';

COMMENT ON COLUMN remediation.failed_syncs.last_error IS 'the last error in full (Cal.com''s answer, or the worker''s guard)';

COMMENT ON COLUMN remediation.failed_syncs.error_code IS 'sync_error_code: a category, or the app''s HTTP_<status>';

COMMENT ON COLUMN remediation.failed_syncs.error_detail IS 'the last error as structure: status, code, message, field, request id';

COMMENT ON COLUMN remediation.failed_syncs.attempts IS 'sync attempts so far';

COMMENT ON COLUMN remediation.failed_syncs.first_failure_at IS 'the first failed attempt (or when it was flagged)';

COMMENT ON COLUMN remediation.failed_syncs.last_failure_at IS 'the last failed attempt';

COMMENT ON COLUMN remediation.failed_syncs.requires_manual_review IS 'flagged for a person';

COMMENT ON COLUMN remediation.failed_syncs.outbox_status IS 'the delivery of its latest outbox event: retry, running or dead (NULL: none pending)';

COMMENT ON COLUMN remediation.failed_syncs.recommended_action IS 'what to do, in words';

COMMENT ON COLUMN remediation.failed_syncs.runbook_step IS 'the `calsync remediate --only` step that fixes it (NULL: a person decides)';

CREATE VIEW remediation.error_distribution AS
 SELECT k.category,
    k.origin,
    (count(f.appointment_id))::integer AS failures,
    round(((100.0 * (count(f.appointment_id))::numeric) / NULLIF(sum(count(f.appointment_id)) OVER (), (0)::numeric)), 1) AS share_percent,
    k.recommended_action
   FROM (remediation.categories k
     LEFT JOIN remediation.failed_syncs f ON ((f.category = k.category)))
  GROUP BY k.category, k.origin, k.recommended_action, k.sort_order
  ORDER BY (count(f.appointment_id)) DESC, k.sort_order;

COMMENT ON VIEW remediation.error_distribution IS 'Failing syncs per category, every category listed (the incident''s and the worker''s).';

COMMENT ON COLUMN remediation.error_distribution.category IS 'the category';

COMMENT ON COLUMN remediation.error_distribution.origin IS 'incident: found from the data; worker: the worker''s verdict';

COMMENT ON COLUMN remediation.error_distribution.failures IS 'failing appointments in this category';

COMMENT ON COLUMN remediation.error_distribution.share_percent IS 'share of all failing appointments, in percent';

COMMENT ON COLUMN remediation.error_distribution.recommended_action IS 'what to do about this category';

CREATE VIEW remediation.host_conflicts AS
 SELECT host_conflicts_without_jit.appointment_id,
    host_conflicts_without_jit.conflicts_with,
    host_conflicts_without_jit.host_key,
    host_conflicts_without_jit.busy,
    host_conflicts_without_jit.other_busy,
    host_conflicts_without_jit.starts_at,
    host_conflicts_without_jit.staff_id,
    host_conflicts_without_jit.other_staff_id,
    host_conflicts_without_jit.calcom_sync_status
   FROM remediation.host_conflicts_without_jit() host_conflicts_without_jit(appointment_id, conflicts_with, host_key, busy, other_busy, starts_at, staff_id, other_staff_id, calcom_sync_status);

COMMENT ON VIEW remediation.host_conflicts IS 'Live appointments not yet at Cal.com (sync pending or failed) and not over, whose host (Cal.com user, else staff row) is booked twice at once: Cal.com will refuse them; reschedule one of the two. Pairs already both at Cal.com are not listed (remediation.host_overlaps has every pair).';

COMMENT ON COLUMN remediation.host_conflicts.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.host_conflicts.conflicts_with IS 'the live appointment of the same host at an overlapping time';

COMMENT ON COLUMN remediation.host_conflicts.host_key IS 'the host: calcom_user:<id>, else staff:<uuid>';

COMMENT ON COLUMN remediation.host_conflicts.busy IS 'this appointment''s staff-required time that overlaps';

COMMENT ON COLUMN remediation.host_conflicts.other_busy IS 'the other appointment''s overlapping time';

COMMENT ON COLUMN remediation.host_conflicts.starts_at IS 'this appointment''s start';

COMMENT ON COLUMN remediation.host_conflicts.staff_id IS 'this appointment''s staff row';

COMMENT ON COLUMN remediation.host_conflicts.other_staff_id IS 'the other appointment''s staff row (another row of one person counts)';

COMMENT ON COLUMN remediation.host_conflicts.calcom_sync_status IS 'this appointment''s sync status: pending or failed';

CREATE VIEW remediation.integrity_issues AS
 SELECT i.id,
    i.rule,
    i.table_name,
    i.row_id,
    i.detail,
    i.found_by,
    i.found_at
   FROM calsync.integrity_issues i
  WHERE (i.resolved_at IS NULL);

COMMENT ON VIEW remediation.integrity_issues IS 'Open integrity issues: rows known to break a rule (listed by a pre-flight, a trigger or the runbook).';

COMMENT ON COLUMN remediation.integrity_issues.id IS 'the issue';

COMMENT ON COLUMN remediation.integrity_issues.rule IS 'the rule the row breaks';

COMMENT ON COLUMN remediation.integrity_issues.table_name IS 'the row''s table';

COMMENT ON COLUMN remediation.integrity_issues.row_id IS 'the row';

COMMENT ON COLUMN remediation.integrity_issues.detail IS 'what is wrong, in words';

COMMENT ON COLUMN remediation.integrity_issues.found_by IS 'what found it';

COMMENT ON COLUMN remediation.integrity_issues.found_at IS 'when';

CREATE TABLE remediation.log (
    id bigint NOT NULL,
    run_id uuid NOT NULL,
    step text NOT NULL,
    operator text NOT NULL,
    reason text,
    table_name text NOT NULL,
    row_id bigint NOT NULL,
    action text NOT NULL,
    before jsonb,
    after jsonb,
    logged_at timestamp with time zone DEFAULT now() NOT NULL,
    undone_by uuid,
    CONSTRAINT log_action_check CHECK ((action = ANY (ARRAY['update'::text, 'insert'::text, 'delete'::text])))
);

COMMENT ON TABLE remediation.log IS 'Every change the runbook made: run, step, operator, reason, and the row before and after.';

ALTER TABLE remediation.log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME remediation.log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE VIEW remediation.past_unsynced AS
 SELECT a.id AS appointment_id,
    a.customer_id,
    a.starts_at,
    a.ends_at,
    a.status,
    a.calcom_sync_status,
    a.sync_error_message AS last_error
   FROM public.appointments a
  WHERE (((a.calcom_sync_status)::text = ANY ((ARRAY['failed'::character varying, 'pending'::character varying])::text[])) AND ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])) AND (a.ends_at < now()) AND (a.calcom_v2_booking_uid IS NULL) AND (a.calcom_booking_id IS NULL));

COMMENT ON VIEW remediation.past_unsynced IS 'Live appointments that are over but never reached Cal.com (Cal.com refuses bookings in the past): cancel them or keep them as history.';

COMMENT ON COLUMN remediation.past_unsynced.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.past_unsynced.customer_id IS 'its customer';

COMMENT ON COLUMN remediation.past_unsynced.starts_at IS 'its start (in the past)';

COMMENT ON COLUMN remediation.past_unsynced.ends_at IS 'its end (in the past)';

COMMENT ON COLUMN remediation.past_unsynced.status IS 'its status';

COMMENT ON COLUMN remediation.past_unsynced.calcom_sync_status IS 'failed or pending: it never synced';

COMMENT ON COLUMN remediation.past_unsynced.last_error IS 'the last sync error';

CREATE VIEW remediation.reconcile_findings AS
 SELECT o.id AS finding_id,
    o.kind,
    o.repair,
    o.uid,
    o.appointment_id,
    o.slot,
    o.calcom_start,
    o.calcom_end,
    o.our_start,
    o.our_end,
    o.successor_uid,
    o.detail,
        CASE o.repair
            WHEN 'cancel_at_calcom'::text THEN 'calsync made this booking and no live appointment holds it: `calsync reconcile --repair` cancels it at Cal.com'::text
            WHEN 'requeue'::text THEN '`calsync reconcile --repair` queues the appointment for the worker (the salon''s booking holds)'::text
            WHEN 'apply_reschedule'::text THEN '`calsync reconcile --repair` moves the appointment to Cal.com''s new time if the integrity rules accept it, else it becomes a person''s'::text
            WHEN 'adopt_successor'::text THEN '`calsync reconcile --repair` records the booking Cal.com moved it to'::text
            ELSE ('a person decides: '::text ||
            CASE o.kind
                WHEN 'orphan_at_calcom'::text THEN 'enter the booking in the salon app, or cancel it at Cal.com'::text
                WHEN 'orphan_here'::text THEN 'cancel the appointment in the salon app, or requeue it to book it again'::text
                ELSE 'move the appointment in the salon app, or requeue it to move the booking back'::text
            END)
        END AS recommended_action,
    o.found_at,
    o.last_seen_at,
    o.found_by,
    o.last_seen_by
   FROM calsync.reconcile_findings o
  WHERE (o.resolved_at IS NULL);

COMMENT ON VIEW remediation.reconcile_findings IS 'Open findings of `calsync reconcile`: bookings at Cal.com no live appointment holds (orphan_at_calcom), our bookings Cal.com lost or cancelled (orphan_here), and drift of time or length (drift), with the repair and what to do.';

COMMENT ON COLUMN remediation.reconcile_findings.finding_id IS 'the finding (calsync.reconcile_findings.id)';

COMMENT ON COLUMN remediation.reconcile_findings.kind IS 'orphan_at_calcom, orphan_here or drift';

COMMENT ON COLUMN remediation.reconcile_findings.repair IS 'cancel_at_calcom, requeue, apply_reschedule, adopt_successor (done by --repair) or person';

COMMENT ON COLUMN remediation.reconcile_findings.uid IS 'the Cal.com booking: the orphan at Cal.com, or ours';

COMMENT ON COLUMN remediation.reconcile_findings.appointment_id IS 'our appointment (for an orphan at Cal.com: the one its metadata names, if it exists)';

COMMENT ON COLUMN remediation.reconcile_findings.slot IS '0: the appointment''s own booking; else the phase id';

COMMENT ON COLUMN remediation.reconcile_findings.calcom_start IS 'the live booking''s start at Cal.com (the successor''s for an outside reschedule)';

COMMENT ON COLUMN remediation.reconcile_findings.calcom_end IS 'its end at Cal.com';

COMMENT ON COLUMN remediation.reconcile_findings.our_start IS 'the start here (appointment or phase)';

COMMENT ON COLUMN remediation.reconcile_findings.our_end IS 'the end here';

COMMENT ON COLUMN remediation.reconcile_findings.successor_uid IS 'for an outside reschedule: the booking Cal.com moved ours to';

COMMENT ON COLUMN remediation.reconcile_findings.detail IS 'what was found, in words (ids, uids and times only)';

COMMENT ON COLUMN remediation.reconcile_findings.recommended_action IS 'what to do';

COMMENT ON COLUMN remediation.reconcile_findings.found_at IS 'when a reconciliation found it first';

COMMENT ON COLUMN remediation.reconcile_findings.last_seen_at IS 'when a reconciliation found it last';

COMMENT ON COLUMN remediation.reconcile_findings.found_by IS 'the reconcile run that found it first';

COMMENT ON COLUMN remediation.reconcile_findings.last_seen_by IS 'the reconcile run that found it last';

CREATE VIEW remediation.refused_calcom_changes AS
 SELECT d.id AS delivery_id,
    d.received_at,
    d.trigger_event,
    d.booking_uid,
    (d.event).reschedule_uid AS reschedule_uid,
    (d.event).start_time AS calcom_start_time,
    d.appointment_id,
    d.outcome,
    d.detail,
    d.attempts,
    d.next_attempt_at,
        CASE d.outcome
            WHEN 'conflict'::text THEN 'The app''s change was kept and goes to Cal.com: tell the customer, or apply Cal.com''s change in the app'::text
            WHEN 'refused'::text THEN 'Move or cancel the appointment in the app to what the customer wants (the rule in the detail refused Cal.com''s change), then resolve the issue'::text
            WHEN 'unmatched'::text THEN 'Look the booking up at Cal.com: reconcile it with the appointment, or cancel it there'::text
            ELSE 'Nothing yet: it is retried by itself (calsync.retry_parked_webhooks)'::text
        END AS recommended_action
   FROM calsync.webhook_deliveries d
  WHERE (d.outcome = ANY (ARRAY['conflict'::text, 'refused'::text, 'unmatched'::text, 'parked'::text]));

COMMENT ON VIEW remediation.refused_calcom_changes IS 'Cal.com changes (webhook deliveries) not applied: conflict, refused, unmatched, or parked and waiting; with what to do.';

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

CREATE TABLE remediation.runs (
    run_id uuid NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    operator text NOT NULL,
    reason text,
    steps text[] NOT NULL,
    dry_run boolean NOT NULL,
    before jsonb,
    after jsonb
);

COMMENT ON TABLE remediation.runs IS 'Runs of `calsync remediate`, with the dashboard and error distribution before and after.';

CREATE VIEW remediation.shared_bookings AS
 SELECT a.id AS appointment_id,
    x.other_id,
    x.reason
   FROM (public.appointments a
     CROSS JOIN LATERAL ( SELECT d.id AS other_id,
            'same customer, start and service'::text AS reason
           FROM public.appointments d
          WHERE ((d.customer_id = a.customer_id) AND (d.starts_at = a.starts_at) AND (d.service_id = a.service_id) AND (d.id <> a.id) AND ((d.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])))
        UNION ALL
         SELECT d.id,
            ('same Cal.com booking '::text || d.calcom_booking_id)
           FROM public.appointments d
          WHERE ((d.calcom_booking_id = a.calcom_booking_id) AND (d.id <> a.id) AND ((d.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])))
        UNION ALL
         SELECT d.id,
            ('same Cal.com booking '::text || (d.calcom_v2_booking_uid)::text)
           FROM public.appointments d
          WHERE (((d.calcom_v2_booking_uid)::text = (a.calcom_v2_booking_uid)::text) AND (d.id <> a.id) AND ((d.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])))
 OFFSET 0) x)
  WHERE ((a.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[]));

COMMENT ON VIEW remediation.shared_bookings IS 'Pairs of live appointments that are one booking twice (same customer, start and service, or same Cal.com booking). Filter by appointment_id; remediation.duplicate_bookings lists the ones to resolve.';

COMMENT ON COLUMN remediation.shared_bookings.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.shared_bookings.other_id IS 'another live appointment that is the same booking';

COMMENT ON COLUMN remediation.shared_bookings.reason IS 'what they share';

CREATE VIEW remediation.stuck_outbox AS
 SELECT o.id AS outbox_id,
    (o.aggregateid)::bigint AS appointment_id,
    o.type,
    o.created_at,
    (now() - o.created_at) AS age,
    d.status,
    d.attempts,
    d.next_attempt_at,
    d.locked_by,
    d.locked_until,
    d.last_category,
    d.last_error
   FROM (calsync.outbox o
     LEFT JOIN calsync.outbox_delivery d ON ((d.outbox_id = o.id)))
  WHERE ((d.status IS DISTINCT FROM 'dead'::text) AND (o.created_at < (now() - '00:05:00'::interval)));

COMMENT ON VIEW remediation.stuck_outbox IS 'Outbox events undelivered for more than 5 minutes (not dead): is the worker running, is Cal.com answering?';

COMMENT ON COLUMN remediation.stuck_outbox.outbox_id IS 'the event';

COMMENT ON COLUMN remediation.stuck_outbox.appointment_id IS 'its appointment';

COMMENT ON COLUMN remediation.stuck_outbox.type IS 'create, cancel or reschedule';

COMMENT ON COLUMN remediation.stuck_outbox.created_at IS 'when it was enqueued';

COMMENT ON COLUMN remediation.stuck_outbox.age IS 'how long it has waited';

COMMENT ON COLUMN remediation.stuck_outbox.status IS 'NULL: never claimed; running: leased; retry: waiting for next_attempt_at';

COMMENT ON COLUMN remediation.stuck_outbox.attempts IS 'attempts so far';

COMMENT ON COLUMN remediation.stuck_outbox.next_attempt_at IS 'when it is retried';

COMMENT ON COLUMN remediation.stuck_outbox.locked_by IS 'the worker holding it';

COMMENT ON COLUMN remediation.stuck_outbox.locked_until IS 'its lease';

COMMENT ON COLUMN remediation.stuck_outbox.last_category IS 'the last failure''s category';

COMMENT ON COLUMN remediation.stuck_outbox.last_error IS 'the last failure in full';

CREATE VIEW remediation.sync_diagnosis AS
 SELECT a.id AS appointment_id,
    x.blocking_cause,
    COALESCE(w.category, x.blocking_cause,
        CASE
            WHEN (a.sync_error_message ~~* '%in the past%'::text) THEN 'PAST_APPOINTMENT'::text
            WHEN ((a.sync_error_message ~~* '%already has booking%'::text) OR (a.sync_error_message ~~* '%not available%'::text)) THEN 'HOST_UNAVAILABLE'::text
            ELSE NULL::text
        END, 'OTHER'::text) AS category
   FROM (((public.appointments a
     LEFT JOIN public.customers c ON ((c.id = a.customer_id)))
     LEFT JOIN remediation.categories w ON (((w.category = (a.sync_error_code)::text) AND (w.origin = 'worker'::text))))
     CROSS JOIN LATERAL ( SELECT
                CASE
                    WHEN (a.is_composite AND ((a.staff_id IS NULL) OR (NOT (EXISTS ( SELECT 1
                       FROM public.appointment_phases p
                      WHERE (p.appointment_id = a.id)))))) THEN 'COMPOSITE_FAILURE'::text
                    WHEN (EXISTS ( SELECT 1
                       FROM remediation.broken_phases b
                      WHERE (b.appointment_id = a.id)
                     OFFSET 0)) THEN 'PHASE_ERROR'::text
                    WHEN ((EXISTS ( SELECT 1
                       FROM remediation.shared_bookings d
                      WHERE (d.appointment_id = a.id)
                     OFFSET 0)) OR (EXISTS ( SELECT 1
                       FROM remediation.host_overlaps h
                      WHERE (h.appointment_id = a.id)
                     OFFSET 0))) THEN 'DOUBLE_BOOKING'::text
                    WHEN ((NOT calsync.is_usable_email((c.email)::text)) AND (NOT calsync.is_usable_phone((c.phone)::text))) THEN 'MISSING_CONTACT'::text
                    ELSE NULL::text
                END AS blocking_cause) x);

COMMENT ON VIEW remediation.sync_diagnosis IS 'Why each appointment does (or would) fail to sync. Filter by appointment_id; remediation.failed_syncs lists the failing ones.';

COMMENT ON COLUMN remediation.sync_diagnosis.appointment_id IS 'the appointment';

COMMENT ON COLUMN remediation.sync_diagnosis.blocking_cause IS 'what in the data keeps it from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL';

COMMENT ON COLUMN remediation.sync_diagnosis.category IS 'its failure category (remediation.categories): the worker''s verdict, else the blocking cause, else Cal.com''s message, else OTHER';

CREATE VIEW remediation.sync_health AS
 WITH t AS (
         SELECT ( SELECT (settings.value)::integer AS value
                   FROM calsync.settings
                  WHERE (settings.key = 'health_failed_critical'::text)) AS failed_critical,
            ( SELECT (settings.value)::numeric AS value
                   FROM calsync.settings
                  WHERE (settings.key = 'health_success_rate_critical'::text)) AS rate_critical
        ), n AS MATERIALIZED (
         SELECT (( SELECT count(*) AS count
                   FROM public.appointments
                  WHERE (((appointments.calcom_sync_status)::text = 'pending'::text) AND ((appointments.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])))))::integer AS pending,
            (( SELECT count(*) AS count
                   FROM public.appointments
                  WHERE ((appointments.calcom_sync_status)::text = 'failed'::text)))::integer AS failed,
            (( SELECT count(*) AS count
                   FROM public.appointments
                  WHERE appointments.requires_manual_review))::integer AS manual_review,
            (( SELECT count(*) AS count
                   FROM calsync.outbox_delivery
                  WHERE (outbox_delivery.status = 'dead'::text)))::integer AS dead_events,
            (( SELECT count(*) AS count
                   FROM public.appointments
                  WHERE (((appointments.calcom_sync_status)::text = 'failed'::text) AND (COALESCE(appointments.last_sync_attempt_at, appointments.manual_review_flagged_at, appointments.updated_at) < (now() - '24:00:00'::interval)))))::integer AS ancient_failures,
            (( SELECT count(*) AS count
                   FROM public.appointments
                  WHERE (((appointments.calcom_sync_status)::text = 'pending'::text) AND ((appointments.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])) AND (COALESCE(appointments.last_sync_attempt_at, appointments.created_at) < (now() - '01:00:00'::interval)))))::integer AS stale_pending,
            h.attempted_24h,
            h.synced_24h,
            (( SELECT count(*) AS count
                   FROM calsync.integrity_issues
                  WHERE (integrity_issues.resolved_at IS NULL)))::integer AS integrity_issues
           FROM ( SELECT (count(*))::integer AS attempted_24h,
                    (count(*) FILTER (WHERE ((appointments.calcom_sync_status)::text = 'synced'::text)))::integer AS synced_24h
                   FROM public.appointments
                  WHERE (appointments.last_sync_attempt_at > (now() - '24:00:00'::interval))) h
        ), a AS (
         SELECT n.pending,
            n.failed,
            n.manual_review,
            n.dead_events,
            n.ancient_failures,
            n.stale_pending,
            n.attempted_24h,
            n.synced_24h,
            n.integrity_issues,
            t.failed_critical,
            t.rate_critical,
                CASE
                    WHEN (n.attempted_24h > 0) THEN round(((100.0 * (n.synced_24h)::numeric) / (n.attempted_24h)::numeric), 2)
                    ELSE NULL::numeric
                END AS success_rate_24h,
            (array_remove(ARRAY[
                CASE
                    WHEN (n.failed >= t.failed_critical) THEN jsonb_build_object('severity', 'critical', 'alert', 'failed_syncs', 'count', n.failed, 'message', (((n.failed || ' failed syncs (threshold '::text) || t.failed_critical) || ')'::text))
                    ELSE NULL::jsonb
                END,
                CASE
                    WHEN ((n.attempted_24h >= 10) AND ((n.synced_24h)::numeric < (t.rate_critical * (n.attempted_24h)::numeric))) THEN jsonb_build_object('severity', 'critical', 'alert', 'success_rate', 'count', (n.attempted_24h - n.synced_24h), 'message', (((('success rate '::text || round(((100.0 * (n.synced_24h)::numeric) / (n.attempted_24h)::numeric), 2)) || ' % over 24 h (threshold '::text) || round(((100)::numeric * t.rate_critical))) || ' %)'::text))
                    ELSE NULL::jsonb
                END,
                CASE
                    WHEN ((n.failed > 0) AND (n.failed < t.failed_critical)) THEN jsonb_build_object('severity', 'warning', 'alert', 'failed_syncs', 'count', n.failed, 'message', (n.failed || ' failed syncs'::text))
                    ELSE NULL::jsonb
                END,
                CASE
                    WHEN (n.dead_events > 0) THEN jsonb_build_object('severity', 'warning', 'alert', 'dead_events', 'count', n.dead_events, 'message', (n.dead_events || ' outbox events given up on'::text))
                    ELSE NULL::jsonb
                END,
                CASE
                    WHEN (n.ancient_failures > 0) THEN jsonb_build_object('severity', 'warning', 'alert', 'ancient_failures', 'count', n.ancient_failures, 'message', (n.ancient_failures || ' failures older than 24 h'::text))
                    ELSE NULL::jsonb
                END,
                CASE
                    WHEN (n.stale_pending > 0) THEN jsonb_build_object('severity', 'warning', 'alert', 'stale_pending', 'count', n.stale_pending, 'message', (n.stale_pending || ' syncs pending for more than 1 h'::text))
                    ELSE NULL::jsonb
                END], NULL::jsonb) || ARRAY( SELECT jsonb_build_object('severity', 'critical', 'alert',
                        CASE
                            WHEN (k.category = 'KEY_MISSING'::text) THEN 'key_missing'::text
                            ELSE 'key_refused'::text
                        END, 'count', 1, 'key_ref', k.key_ref, 'message',
                        CASE
                            WHEN (k.category = 'KEY_MISSING'::text) THEN ((((((('No usable Cal.com key for '::text || k.key_ref) || ' since '::text) || to_char((k.first_seen AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD HH24:MI:SS'::text)) || ' UTC: '::text) || k.message) || '; its syncs are held (no attempt counted) '::text) || 'and resume by themselves once the key file is there'::text)
                            ELSE (((((((('Cal.com refuses key '::text || k.key_ref) || ' ('::text) || k.category) || ') since '::text) || to_char((k.first_seen AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD HH24:MI:SS'::text)) || ' UTC: '::text) || k.message) || '; its syncs wait and resume by themselves once it works'::text)
                        END) AS jsonb_build_object
                   FROM calsync.key_problems k
                  WHERE (k.resolved_at IS NULL)
                  ORDER BY k.key_ref)) AS alerts
           FROM n,
            t
        ), per_company AS (
         SELECT x.company_id,
            (sum(x.pending))::integer AS pending,
            (sum(x.failed))::integer AS failed,
            (sum(x.depth))::integer AS outbox_depth,
            (sum(x.dead))::integer AS dead_events,
            (sum(x.held))::integer AS held,
            round(max(x.oldest_pending_s), 1) AS oldest_pending_s
           FROM ( SELECT a_1.company_id,
                    count(*) FILTER (WHERE ((a_1.calcom_sync_status)::text = 'pending'::text)) AS pending,
                    count(*) FILTER (WHERE ((a_1.calcom_sync_status)::text = 'failed'::text)) AS failed,
                    0 AS depth,
                    0 AS dead,
                    0 AS held,
                    NULL::numeric AS oldest_pending_s
                   FROM public.appointments a_1
                  WHERE (((a_1.calcom_sync_status)::text = ANY ((ARRAY['pending'::character varying, 'failed'::character varying])::text[])) AND ((a_1.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])))
                  GROUP BY a_1.company_id
                UNION ALL
                 SELECT o.company_id,
                    0,
                    0,
                    count(*) FILTER (WHERE (d.status IS DISTINCT FROM 'dead'::text)) AS count,
                    count(*) FILTER (WHERE (d.status = 'dead'::text)) AS count,
                    count(*) FILTER (WHERE ((d.status = 'retry'::text) AND (k.scope = 'key'::text))) AS count,
                    EXTRACT(epoch FROM (now() - min(o.created_at) FILTER (WHERE (d.status IS DISTINCT FROM 'dead'::text)))) AS "extract"
                   FROM ((calsync.outbox o
                     LEFT JOIN calsync.outbox_delivery d ON ((d.outbox_id = o.id)))
                     LEFT JOIN remediation.categories k ON ((k.category = d.last_category)))
                  GROUP BY o.company_id) x
          GROUP BY x.company_id
        )
 SELECT
        CASE
            WHEN (EXISTS ( SELECT 1
               FROM unnest(a.alerts) x(x)
              WHERE ((x.x ->> 'severity'::text) = 'critical'::text))) THEN 'CRITICAL'::text
            WHEN (cardinality(a.alerts) > 0) THEN 'DEGRADED'::text
            ELSE 'HEALTHY'::text
        END AS health,
    a.success_rate_24h,
    a.attempted_24h,
    a.pending,
    a.failed,
    a.manual_review,
    a.dead_events,
    a.ancient_failures,
    a.stale_pending,
    a.integrity_issues,
    (( SELECT count(*) AS count
           FROM unnest(a.alerts) x(x)
          WHERE ((x.x ->> 'severity'::text) = 'critical'::text)))::integer AS critical_alerts,
    to_jsonb(a.alerts) AS alerts,
    ( SELECT COALESCE(jsonb_agg(jsonb_build_object('company_id', c.company_id, 'pending', c.pending, 'failed', c.failed, 'outbox_depth', c.outbox_depth, 'dead_events', c.dead_events, 'held', c.held, 'oldest_pending_s', c.oldest_pending_s, 'key_problem', ( SELECT k.category
                   FROM calsync.key_problems k
                  WHERE ((k.resolved_at IS NULL) AND (k.key_ref = ('company:'::text || c.company_id))))) ORDER BY c.company_id), '[]'::jsonb) AS "coalesce"
           FROM per_company c) AS companies
   FROM a;

COMMENT ON VIEW remediation.sync_health IS 'The sync dashboard in one row. CRITICAL: failed >= health_failed_critical (10), 24 h success rate < health_success_rate_critical (80 %) or a key refused by Cal.com; DEGRADED: any failure, dead event, failure older than 24 h or pending older than 1 h; else HEALTHY.';

COMMENT ON COLUMN remediation.sync_health.health IS 'HEALTHY, DEGRADED or CRITICAL (thresholds in the view comment and calsync.settings)';

COMMENT ON COLUMN remediation.sync_health.success_rate_24h IS 'percent of appointments attempted in the last 24 h that are synced';

COMMENT ON COLUMN remediation.sync_health.attempted_24h IS 'appointments with a sync attempt in the last 24 h';

COMMENT ON COLUMN remediation.sync_health.pending IS 'live appointments waiting to sync';

COMMENT ON COLUMN remediation.sync_health.failed IS 'appointments whose sync failed';

COMMENT ON COLUMN remediation.sync_health.manual_review IS 'appointments flagged for a person';

COMMENT ON COLUMN remediation.sync_health.dead_events IS 'outbox events given up on';

COMMENT ON COLUMN remediation.sync_health.ancient_failures IS 'failed syncs whose last attempt is older than 24 h';

COMMENT ON COLUMN remediation.sync_health.stale_pending IS 'syncs pending for more than 1 h';

COMMENT ON COLUMN remediation.sync_health.integrity_issues IS 'open rows of calsync.integrity_issues';

COMMENT ON COLUMN remediation.sync_health.critical_alerts IS 'how many alerts are critical';

COMMENT ON COLUMN remediation.sync_health.alerts IS 'active alerts: [{severity, alert, count, message}]';

COMMENT ON COLUMN remediation.sync_health.companies IS 'per company: [{company_id, pending, failed, outbox_depth, dead_events, held, oldest_pending_s, key_problem}]';

ALTER TABLE ONLY public.appointment_phases ALTER COLUMN id SET DEFAULT nextval('public.appointment_phases_id_seq'::regclass);

ALTER TABLE ONLY public.appointments ALTER COLUMN id SET DEFAULT nextval('public.appointments_id_seq'::regclass);

ALTER TABLE ONLY public.calcom_event_map ALTER COLUMN id SET DEFAULT nextval('public.calcom_event_map_id_seq'::regclass);

ALTER TABLE ONLY public.companies ALTER COLUMN id SET DEFAULT nextval('public.companies_id_seq'::regclass);

ALTER TABLE ONLY public.customers ALTER COLUMN id SET DEFAULT nextval('public.customers_id_seq'::regclass);

ALTER TABLE ONLY public.services ALTER COLUMN id SET DEFAULT nextval('public.services_id_seq'::regclass);

ALTER TABLE ONLY calsync.company_settings
    ADD CONSTRAINT company_settings_pkey PRIMARY KEY (company_id);

ALTER TABLE ONLY calsync.foreign_calcom_bookings
    ADD CONSTRAINT foreign_calcom_bookings_pkey PRIMARY KEY (uid);

ALTER TABLE ONLY calsync.host_busy_time
    ADD CONSTRAINT host_busy_time_no_overlap EXCLUDE USING gist (host_id WITH =, busy WITH &&, ((appointment_id + 0)) WITH <>);

COMMENT ON CONSTRAINT host_busy_time_no_overlap ON calsync.host_busy_time IS 'A host (Cal.com user, else staff row) cannot be booked twice at once; the DETAIL names both appointments: choose another time or host.';

ALTER TABLE ONLY calsync.host_busy_time
    ADD CONSTRAINT host_busy_time_pkey PRIMARY KEY (appointment_id);

ALTER TABLE ONLY calsync.integrity_issues
    ADD CONSTRAINT integrity_issues_pkey PRIMARY KEY (id);

ALTER TABLE ONLY calsync.key_problems
    ADD CONSTRAINT key_problems_pkey PRIMARY KEY (id);

ALTER TABLE ONLY calsync.outbox_delivery
    ADD CONSTRAINT outbox_delivery_pkey PRIMARY KEY (outbox_id);

ALTER TABLE ONLY calsync.outbox_listeners
    ADD CONSTRAINT outbox_listeners_pkey PRIMARY KEY (worker_id);

ALTER TABLE ONLY calsync.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);

ALTER TABLE ONLY calsync.rate_limits
    ADD CONSTRAINT rate_limits_pkey PRIMARY KEY (key_ref);

ALTER TABLE ONLY calsync.reconcile_findings
    ADD CONSTRAINT reconcile_findings_pkey PRIMARY KEY (id);

ALTER TABLE ONLY calsync.settings
    ADD CONSTRAINT settings_pkey PRIMARY KEY (key);

ALTER TABLE ONLY calsync.superseded_phases
    ADD CONSTRAINT superseded_phases_pkey PRIMARY KEY (id);

ALTER TABLE ONLY calsync.sync_attempts
    ADD CONSTRAINT sync_attempts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY calsync.synced_bookings
    ADD CONSTRAINT synced_bookings_pkey PRIMARY KEY (appointment_id, slot);

ALTER TABLE ONLY calsync.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.appointment_phases
    ADD CONSTRAINT appointment_phases_one_per_sequence UNIQUE (appointment_id, sequence_order);

ALTER TABLE ONLY public.appointment_phases
    ADD CONSTRAINT appointment_phases_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_calcom_v2_booking_id_unique UNIQUE (calcom_v2_booking_id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.branches
    ADD CONSTRAINT branches_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_service_segment_staff_unique UNIQUE (service_id, segment_key, staff_id);

ALTER TABLE ONLY public.companies
    ADD CONSTRAINT companies_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_calcom_event_type_id_unique UNIQUE (calcom_event_type_id);

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_company_id_email_unique UNIQUE (company_id, email);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_pkey PRIMARY KEY (id);

ALTER TABLE ONLY remediation.categories
    ADD CONSTRAINT categories_pkey PRIMARY KEY (category);

ALTER TABLE ONLY remediation.failure_diagnoses
    ADD CONSTRAINT failure_diagnoses_pkey PRIMARY KEY (appointment_id);

ALTER TABLE ONLY remediation.log
    ADD CONSTRAINT log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY remediation.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (run_id);

CREATE UNIQUE INDEX integrity_issues_one_open_per_rule_and_row ON calsync.integrity_issues USING btree (rule, table_name, row_id) WHERE (resolved_at IS NULL);

CREATE UNIQUE INDEX key_problems_one_open_per_key ON calsync.key_problems USING btree (key_ref) WHERE (resolved_at IS NULL);

CREATE INDEX outbox_aggregateid_seq_index ON calsync.outbox USING btree (aggregateid, seq);

CREATE INDEX outbox_company_id_seq_index ON calsync.outbox USING btree (company_id, seq);

CREATE INDEX outbox_delivery_aggregateid_index ON calsync.outbox_delivery USING btree (aggregateid);

CREATE INDEX outbox_delivery_lease_index ON calsync.outbox_delivery USING btree (locked_until) WHERE (status = 'running'::text);

CREATE UNIQUE INDEX outbox_seq_unique ON calsync.outbox USING btree (seq);

CREATE UNIQUE INDEX reconcile_findings_one_open_per_booking ON calsync.reconcile_findings USING btree (kind, uid) WHERE (resolved_at IS NULL);

COMMENT ON INDEX calsync.reconcile_findings_one_open_per_booking IS 'One open finding per kind and Cal.com booking: a reconciliation that finds it again updates it.';

CREATE INDEX superseded_phases_appointment_id_index ON calsync.superseded_phases USING btree (appointment_id);

CREATE INDEX sync_attempts_appointment_id_index ON calsync.sync_attempts USING btree (appointment_id, id);

CREATE INDEX sync_attempts_created_at_brin ON calsync.sync_attempts USING brin (created_at);

CREATE INDEX webhook_deliveries_not_applied_index ON calsync.webhook_deliveries USING btree (id) WHERE (outcome = ANY (ARRAY['conflict'::text, 'refused'::text, 'unmatched'::text, 'parked'::text]));

CREATE UNIQUE INDEX webhook_deliveries_one_first_delivery_per_event ON calsync.webhook_deliveries USING btree (event_key) WHERE (duplicate_of IS NULL);

CREATE INDEX webhook_deliveries_parked_due_index ON calsync.webhook_deliveries USING btree (next_attempt_at) WHERE (outcome = 'parked'::text);

CREATE INDEX webhook_deliveries_parked_waiting_index ON calsync.webhook_deliveries USING btree (waiting_for) WHERE (outcome = 'parked'::text);

CREATE INDEX webhook_deliveries_received_at_index ON calsync.webhook_deliveries USING btree (received_at);

CREATE INDEX appointment_phases_appointment_id_calcom_sync_status_index ON public.appointment_phases USING btree (appointment_id, calcom_sync_status);

CREATE INDEX appointment_phases_appointment_id_phase_type_index ON public.appointment_phases USING btree (appointment_id, phase_type);

CREATE INDEX appointment_phases_appointment_id_sequence_order_index ON public.appointment_phases USING btree (appointment_id, sequence_order);

CREATE UNIQUE INDEX appointment_phases_one_per_calcom_booking_id ON public.appointment_phases USING btree (calcom_booking_id) WHERE (calcom_booking_id IS NOT NULL);

COMMENT ON INDEX public.appointment_phases_one_per_calcom_booking_id IS 'One appointment_phases row per Cal.com booking (calcom_booking_id): a second row pointing at the same booking is a duplicate; cancel it or clear its booking id.';

CREATE UNIQUE INDEX appointment_phases_one_per_calcom_booking_uid ON public.appointment_phases USING btree (calcom_booking_uid) WHERE (calcom_booking_uid IS NOT NULL);

COMMENT ON INDEX public.appointment_phases_one_per_calcom_booking_uid IS 'One appointment_phases row per Cal.com booking (calcom_booking_uid): a second row pointing at the same booking is a duplicate; cancel it or clear its booking id.';

CREATE INDEX appointment_phases_staff_required_index ON public.appointment_phases USING btree (staff_required);

CREATE INDEX appointment_phases_start_time_end_time_index ON public.appointment_phases USING btree (start_time, end_time);

CREATE INDEX appointments_calcom_booking_id_index ON public.appointments USING btree (calcom_booking_id);

CREATE INDEX appointments_calcom_sync_status_index ON public.appointments USING btree (calcom_sync_status);

CREATE INDEX appointments_company_id_index ON public.appointments USING btree (company_id);

CREATE INDEX appointments_customer_id_index ON public.appointments USING btree (customer_id);

CREATE UNIQUE INDEX appointments_one_live_per_calcom_booking_id ON public.appointments USING btree (calcom_booking_id) WHERE ((calcom_booking_id IS NOT NULL) AND ((status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])));

COMMENT ON INDEX public.appointments_one_live_per_calcom_booking_id IS 'One appointments row per Cal.com booking (calcom_booking_id): a second row pointing at the same booking is a duplicate; cancel it or clear its booking id.';

CREATE UNIQUE INDEX appointments_one_live_per_calcom_booking_uid ON public.appointments USING btree (calcom_v2_booking_uid) WHERE ((calcom_v2_booking_uid IS NOT NULL) AND ((status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])));

COMMENT ON INDEX public.appointments_one_live_per_calcom_booking_uid IS 'One appointments row per Cal.com booking (calcom_v2_booking_uid): a second row pointing at the same booking is a duplicate; cancel it or clear its booking id.';

CREATE UNIQUE INDEX appointments_one_live_per_customer_slot ON public.appointments USING btree (customer_id, starts_at, service_id) WHERE ((status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[]));

COMMENT ON INDEX public.appointments_one_live_per_customer_slot IS 'One live appointment per customer, start and service: cancel the duplicate or move it to another time.';

CREATE INDEX appointments_service_id_index ON public.appointments USING btree (service_id);

CREATE INDEX appointments_staff_id_starts_at_index ON public.appointments USING btree (staff_id, starts_at);

CREATE INDEX appointments_starts_at_index ON public.appointments USING btree (starts_at);

CREATE INDEX branches_company_id_index ON public.branches USING btree (company_id);

CREATE INDEX calcom_event_map_staff_id_index ON public.calcom_event_map USING btree (staff_id);

CREATE INDEX customers_company_id_index ON public.customers USING btree (company_id);

CREATE UNIQUE INDEX customers_email_unique ON public.customers USING btree (email);

CREATE INDEX customers_phone_index ON public.customers USING btree (phone);

CREATE INDEX remediation_appointments_calcom_uid_index ON public.appointments USING btree (calcom_v2_booking_uid) WHERE (calcom_v2_booking_uid IS NOT NULL);

CREATE INDEX remediation_appointments_failing_index ON public.appointments USING btree (id) WHERE (((calcom_sync_status)::text = 'failed'::text) OR requires_manual_review);

CREATE INDEX remediation_appointments_last_sync_attempt_index ON public.appointments USING btree (last_sync_attempt_at) INCLUDE (calcom_sync_status) WHERE (last_sync_attempt_at IS NOT NULL);

CREATE INDEX remediation_appointments_unsynced_ends_at_index ON public.appointments USING btree (ends_at) WHERE ((calcom_sync_status)::text = ANY ((ARRAY['failed'::character varying, 'pending'::character varying])::text[]));

CREATE INDEX remediation_customers_invalid_email_index ON public.customers USING btree (id) WHERE (calsync.has_email((email)::text) AND (NOT calsync.is_usable_email((email)::text)));

CREATE INDEX remediation_customers_missing_contact_index ON public.customers USING btree (id) WHERE ((NOT calsync.is_usable_email((email)::text)) AND (NOT calsync.is_usable_phone((phone)::text)));

CREATE INDEX remediation_staff_host_key_index ON public.staff USING btree (calsync.host_key(calcom_user_id, id));

CREATE INDEX services_company_id_index ON public.services USING btree (company_id);

CREATE INDEX staff_calcom_user_id_index ON public.staff USING btree (calcom_user_id);

CREATE INDEX remediation_log_run_id_index ON remediation.log USING btree (run_id);

CREATE STATISTICS calsync.customers_email_length ON length(email::text) FROM public.customers;

CREATE OR REPLACE VIEW calsync.remediation_duplicate_bookings AS
 WITH seeds AS (
         SELECT a_1.id
           FROM (remediation.unsettled_appointments u
             JOIN public.appointments a_1 ON ((a_1.id = u.appointment_id)))
          WHERE (((a_1.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])) AND (a_1.starts_at >= (now() - '30 days'::interval)) AND (EXISTS ( SELECT 1
                   FROM remediation.shared_bookings b_1
                  WHERE (b_1.appointment_id = a_1.id)
                 OFFSET 0)))
        ), members AS (
         SELECT seeds.id
           FROM seeds
        UNION
         SELECT b_1.other_id
           FROM (seeds
             JOIN remediation.shared_bookings b_1 ON ((b_1.appointment_id = seeds.id)))
        )
 SELECT a.id AS appointment_id,
    a.customer_id,
    a.starts_at,
    a.service_id,
    a.calcom_booking_id,
    a.calcom_v2_booking_uid,
    a.status,
    a.calcom_sync_status,
    array_agg(DISTINCT b.other_id ORDER BY b.other_id) AS duplicates_of,
    string_agg(DISTINCT b.reason, '; '::text ORDER BY b.reason) AS reason
   FROM ((members m
     JOIN public.appointments a ON ((a.id = m.id)))
     JOIN remediation.shared_bookings b ON ((b.appointment_id = a.id)))
  GROUP BY a.id;

CREATE TRIGGER outbox_record_company BEFORE INSERT ON calsync.outbox FOR EACH ROW WHEN (((new.company_id IS NULL) AND (new.aggregatetype = 'appointment'::text))) EXECUTE FUNCTION calsync.tg_outbox__record_company();

CREATE TRIGGER outbox_wake_worker AFTER INSERT ON calsync.outbox FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_outbox__wake_worker();

CREATE TRIGGER appointment_phases_enqueue_sync_delete AFTER DELETE ON public.appointment_phases REFERENCING OLD TABLE AS old_phases FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE TRIGGER appointment_phases_enqueue_sync_insert AFTER INSERT ON public.appointment_phases REFERENCING NEW TABLE AS new_phases FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE TRIGGER appointment_phases_enqueue_sync_update AFTER UPDATE ON public.appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__enqueue_sync();

CREATE TRIGGER appointment_phases_reserve_host_time_delete AFTER DELETE ON public.appointment_phases REFERENCING OLD TABLE AS old_phases FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__delete_host_time();

CREATE TRIGGER appointment_phases_reserve_host_time_insert AFTER INSERT ON public.appointment_phases REFERENCING NEW TABLE AS new_phases FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__insert_host_time();

CREATE TRIGGER appointment_phases_reserve_host_time_update AFTER UPDATE ON public.appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__update_host_time();

CREATE CONSTRAINT TRIGGER appointments_composite_has_phases AFTER INSERT OR UPDATE OF service_id, starts_at, is_composite, status ON public.appointments DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (new.is_composite) EXECUTE FUNCTION calsync.tg_appointments__derive_phases_at_commit();

CREATE TRIGGER appointments_composite_matches_service BEFORE INSERT OR UPDATE OF service_id, is_composite ON public.appointments FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__match_composite();

CREATE TRIGGER appointments_diagnose_failure AFTER INSERT OR UPDATE OF calcom_sync_status, requires_manual_review, sync_error_code, sync_error_message ON public.appointments FOR EACH ROW WHEN ((((new.calcom_sync_status)::text = 'failed'::text) OR new.requires_manual_review)) EXECUTE FUNCTION remediation.tg_appointments__diagnose_failure();

CREATE TRIGGER appointments_enqueue_sync AFTER INSERT ON public.appointments FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE TRIGGER appointments_enqueue_sync_on_change AFTER UPDATE OF status, starts_at, staff_id, service_id ON public.appointments FOR EACH ROW WHEN ((((new.status)::text IS DISTINCT FROM (old.status)::text) OR (new.starts_at IS DISTINCT FROM old.starts_at) OR (new.staff_id IS DISTINCT FROM old.staff_id) OR (new.service_id IS DISTINCT FROM old.service_id))) EXECUTE FUNCTION calsync.tg_appointments__enqueue_sync();

CREATE TRIGGER appointments_phases_follow_appointment AFTER UPDATE OF starts_at, service_id ON public.appointments FOR EACH ROW WHEN (((new.starts_at IS DISTINCT FROM old.starts_at) OR (new.service_id IS DISTINCT FROM old.service_id))) EXECUTE FUNCTION calsync.tg_appointments__keep_phases_in_step();

CREATE TRIGGER appointments_release_host_time AFTER DELETE ON public.appointments REFERENCING OLD TABLE AS old_appointments FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointments__release_host_time();

CREATE TRIGGER appointments_reserve_host_time AFTER INSERT ON public.appointments FOR EACH ROW WHEN (((NOT new.is_composite) AND (new.staff_id IS NOT NULL) AND ((new.status)::text <> ALL ((ARRAY['cancelled'::character varying, 'no_show'::character varying])::text[])) AND (new.ends_at > new.starts_at))) EXECUTE FUNCTION calsync.tg_appointments__reserve_host_time();

CREATE CONSTRAINT TRIGGER appointments_reserve_host_time_at_commit AFTER INSERT OR UPDATE OF starts_at, ends_at, staff_id, status, service_id ON public.appointments DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (new.is_composite) EXECUTE FUNCTION calsync.tg_appointments__reserve_host_time_at_commit();

CREATE TRIGGER appointments_reserve_host_time_on_change AFTER UPDATE OF starts_at, ends_at, staff_id, status, service_id ON public.appointments FOR EACH ROW WHEN (((new.starts_at IS DISTINCT FROM old.starts_at) OR (new.ends_at IS DISTINCT FROM old.ends_at) OR (new.staff_id IS DISTINCT FROM old.staff_id) OR ((new.status)::text IS DISTINCT FROM (old.status)::text) OR (new.service_id IS DISTINCT FROM old.service_id))) EXECUTE FUNCTION calsync.tg_appointments__update_host_time();

CREATE TRIGGER appointments_version_check BEFORE UPDATE ON public.appointments FOR EACH ROW EXECUTE FUNCTION calsync.tg_appointments__check_version();

CREATE TRIGGER customers_fill_placeholder_email BEFORE INSERT OR UPDATE OF email, phone ON public.customers FOR EACH ROW EXECUTE FUNCTION calsync.tg_customers__fill_placeholder_email();

CREATE TRIGGER customers_resolve_changed_contact_findings AFTER UPDATE OF phone ON public.customers FOR EACH ROW WHEN (((old.phone)::text IS DISTINCT FROM (new.phone)::text)) EXECUTE FUNCTION calsync.tg_customers__resolve_changed_contact_findings();

CREATE TRIGGER services_keep_segments_while_booked BEFORE UPDATE OF segments, composite ON public.services FOR EACH ROW EXECUTE FUNCTION calsync.tg_services__keep_segments_while_booked();

CREATE TRIGGER staff_rekey_host_busy_time AFTER UPDATE OF calcom_user_id ON public.staff FOR EACH ROW WHEN ((new.calcom_user_id IS DISTINCT FROM old.calcom_user_id)) EXECUTE FUNCTION calsync.tg_staff__rekey_host_busy_time();

ALTER TABLE ONLY calsync.company_settings
    ADD CONSTRAINT company_settings_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;

ALTER TABLE ONLY calsync.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_duplicate_of_a_first_delivery FOREIGN KEY (duplicate_of) REFERENCES calsync.webhook_deliveries(id);

ALTER TABLE ONLY public.appointment_phases
    ADD CONSTRAINT appointment_phases_appointment_id_fkey FOREIGN KEY (appointment_id) REFERENCES public.appointments(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_branch_id_fkey FOREIGN KEY (branch_id) REFERENCES public.branches(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_service_id_fkey FOREIGN KEY (service_id) REFERENCES public.services(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES public.staff(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.branches
    ADD CONSTRAINT branches_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_service_id_fkey FOREIGN KEY (service_id) REFERENCES public.services(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES public.staff(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_branch_id_fkey FOREIGN KEY (branch_id) REFERENCES public.branches(id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY remediation.failure_diagnoses
    ADD CONSTRAINT failure_diagnoses_category_fkey FOREIGN KEY (category) REFERENCES remediation.categories(category);
