-- The runbook: every fix the incident applied by hand, as an audited SQL function. Each step
--  - finds only rows that still need it, so a second run changes nothing (idempotent);
--  - locks each row, re-checks it and changes it in one short statement, so it is safe next to the app
--    and the worker;
--  - with p_dry_run (the default) only returns what it would change;
--  - records before and after images in remediation.log with the run id, operator and reason;
--  - never deletes a row; remediation.undo(run_id) reverts a run.
-- Steps return SETOF remediation.change; p_limit bounds one call (the CLI calls again until done).
-- SECURITY DEFINER: calsync_remediator needs EXECUTE only.

CREATE OR REPLACE FUNCTION remediation.operator() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('calsync.operator', true), ''), session_user::text)
$$;
COMMENT ON FUNCTION remediation.operator() IS 'Who runs the runbook: the session setting calsync.operator (the CLI sets the OS user), else the database user.';

CREATE OR REPLACE FUNCTION remediation.record(p_run_id uuid, p_step text, p_reason text, p_table text, p_row_id bigint,
                                              p_action text, p_before jsonb, p_after jsonb)
RETURNS remediation.change
LANGUAGE sql AS $$
    INSERT INTO remediation.log (run_id, step, operator, reason, table_name, row_id, action, before, after)
    VALUES (p_run_id, p_step, remediation.operator(), p_reason, p_table, p_row_id, p_action, p_before, p_after)
    RETURNING step, table_name, row_id, action, before, after
$$;
COMMENT ON FUNCTION remediation.record(uuid, text, text, text, bigint, text, jsonb, jsonb) IS
    'Write one change of a runbook step to remediation.log and return it.';

-- Fix 1: customers without any usable contact get customer_<id>@<domain> (flagged as a placeholder).
CREATE OR REPLACE FUNCTION remediation.backfill_placeholder_emails(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.backfill_placeholder_emails(boolean, text, uuid, integer) IS
    'Runbook step placeholder_emails (incident fix 1): customers with no usable e-mail or phone get customer_<id>@<domain>.';

-- The sync columns a runbook step may change on an appointment, as an image.
CREATE OR REPLACE FUNCTION remediation.appointment_image(p_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'status', status, 'calcom_sync_status', calcom_sync_status, 'requires_manual_review', requires_manual_review,
        'manual_review_flagged_at', manual_review_flagged_at, 'sync_error_code', sync_error_code,
        'sync_error_message', sync_error_message, 'calcom_booking_id', calcom_booking_id,
        'calcom_v2_booking_id', calcom_v2_booking_id, 'calcom_v2_booking_uid', calcom_v2_booking_uid)
    FROM appointments WHERE id = p_id
$$;
COMMENT ON FUNCTION remediation.appointment_image(bigint) IS 'The appointment columns the runbook changes, as JSON (for remediation.log).';

-- Apply an image to an appointment (the columns present in p_image); used by the steps and by undo.
CREATE OR REPLACE FUNCTION remediation.apply_appointment_image(p_id bigint, p_image jsonb) RETURNS void
LANGUAGE sql AS $$
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
COMMENT ON FUNCTION remediation.apply_appointment_image(bigint, jsonb) IS 'Set the appointment columns present in an image (runbook steps and undo).';

-- One appointment change of a step: lock, re-check (p_still: a condition on the locked row), apply, log.
CREATE OR REPLACE FUNCTION remediation.change_appointment(p_run_id uuid, p_step text, p_reason text, p_id bigint,
                                                          p_changes jsonb, p_dry_run boolean, p_still text)
RETURNS remediation.change
LANGUAGE plpgsql AS $$
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
$$;
COMMENT ON FUNCTION remediation.change_appointment(uuid, text, text, bigint, jsonb, boolean, text) IS
    'Lock an appointment, re-check the step''s condition, apply the change and log before/after (or only report it in a dry run).';

-- Fix 2: live composite appointments without phases get them from their service's segments (or are
-- flagged when the segments are unusable). Appointments that have phases are skipped (#667, #673).
CREATE OR REPLACE FUNCTION remediation.create_missing_phases(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.create_missing_phases(boolean, text, uuid, integer) IS
    'Runbook step missing_phases (incident fix 2): derive the phases of live composite appointments that have none.';

-- Phases that are broken (doubled, without sequence or segment, or out of step with the appointment) are
-- superseded (moved to calsync.superseded_phases, not lost) and derived again from the service.
CREATE OR REPLACE FUNCTION remediation.repair_broken_phases(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.repair_broken_phases(boolean, text, uuid, integer) IS
    'Runbook step broken_phases: supersede invalid phases (kept in calsync.superseded_phases) and derive them again.';

-- Fix 3: of live appointments sharing a slot or a Cal.com booking keep one, the one with a booking (then
-- the lowest id), mark it synced, cancel the others. A duplicate that only points at the kept one's
-- booking loses that pointer (logged), so its cancellation does not cancel the kept booking at Cal.com.
CREATE OR REPLACE FUNCTION remediation.resolve_duplicate_bookings(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.resolve_duplicate_bookings(boolean, text, uuid, integer) IS
    'Runbook step duplicates (incident fix 3): keep the appointment with the Cal.com booking, cancel the duplicates.';

-- Fix 4: cancel live appointments without a service, and composite ones without staff (staff required).
CREATE OR REPLACE FUNCTION remediation.cancel_invalid_appointments(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.cancel_invalid_appointments(boolean, text, uuid, integer) IS
    'Runbook step invalid (incident fix 4): cancel live appointments without a service, or composite ones without staff.';

-- Remaining category 1: live appointments that are over and never reached Cal.com. p_mode 'historical'
-- keeps them as history (calcom_sync_status orphaned_local: they exist only here); 'cancel' cancels them.
CREATE OR REPLACE FUNCTION remediation.resolve_past_unsynced(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL, p_mode text DEFAULT 'historical', p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.resolve_past_unsynced(boolean, text, uuid, integer, text, timestamptz) IS
    'Runbook step past (remaining category 1): past appointments that never synced are kept as history (orphaned_local) or cancelled.';

-- Remaining category 2: upcoming live appointments whose host is booked twice: flag both for a
-- reschedule, naming the conflicting booking, and list them in calsync.integrity_issues.
CREATE OR REPLACE FUNCTION remediation.flag_host_conflicts(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.flag_host_conflicts(boolean, text, uuid, integer) IS
    'Runbook step host_conflicts (remaining category 2): flag double-booked hosts'' appointments for a reschedule, naming the other booking.';

-- Requeue failing upcoming appointments whose cause is gone (nothing in the data blocks them any more),
-- for the categories given (NULL: every category that is not a person's decision), so the worker retries.
CREATE OR REPLACE FUNCTION remediation.requeue_failures(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL, p_categories text[] DEFAULT NULL, p_now timestamptz DEFAULT now())
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.requeue_failures(boolean, text, uuid, integer, text[], timestamptz) IS
    'Runbook step requeue: queue failing upcoming appointments whose cause is fixed for another sync.';

-- Revert a run: every logged change, newest first. Updated columns get their before values back; rows a
-- step inserted (derived phases, integrity issues, outbox events not yet delivered) are removed again,
-- which restores the state before the run exactly. The undo is itself a logged run; returns its changes.
CREATE OR REPLACE FUNCTION remediation.undo(p_run_id uuid, p_reason text DEFAULT NULL)
RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
        END IF;
        UPDATE remediation.log SET undone_by = v_undo WHERE id = l.id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.undo(uuid, text) IS
    'Revert a runbook run from its log (newest change first); the undo is itself logged as a run.';
