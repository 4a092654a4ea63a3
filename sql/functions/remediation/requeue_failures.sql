-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

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
