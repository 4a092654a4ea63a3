-- Runbook step reconcile: repair the open findings of reconciliation that are ours to fix in our own rows, as an
-- audited run (remediation.log, before and after images; remediation.undo_reconcile reverts it). The rule: the
-- salon's database is the source of truth for the bookings calsync made, so
--  requeue           (lost booking, drift of time or length, a booking we never recorded) the appointment is
--                    queued for the worker: what we recorded of a lost booking is forgotten first (it books again),
--                    of a drifted one Cal.com's time is recorded (it moves it back), a booking never recorded is
--                    adopted by the worker's lookup by metadata;
--  apply_reschedule  an attendee or host moved the booking at Cal.com: the appointment takes the new time and the
--                    new booking if the integrity rules accept it (host busy time, one live slot, ...); a refusal
--                    turns the finding into a person's, with the rule that refused it;
--  adopt_successor   the successor is at the salon's own time: it is recorded as the booking.
-- Bookings at Cal.com to cancel (cancel_at_calcom) are cancelled by `calsync reconcile --repair` through the
-- Cal.com client and recorded with remediation.record_reconcile_cancellation; person findings stay listed.
-- Each finding is re-checked under the appointment's lock: one whose appointment is no longer live or has an
-- event in calsync.outbox again is left for the next reconciliation. p_dry_run (the default) changes nothing.
CREATE OR REPLACE FUNCTION remediation.repair_reconcile_findings(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL, p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.repair_reconcile_findings(boolean, text, uuid, integer, timestamptz) IS
    'Runbook step reconcile: requeue lost and drifted bookings, apply outside reschedules the integrity rules accept, adopt successors; logged, undone by remediation.undo_reconcile.';
