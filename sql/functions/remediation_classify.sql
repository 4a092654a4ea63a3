-- Per-appointment answers for the worker and the runbook. Each reads one building block of
-- sql/views/remediation_diagnosis.sql filtered by the appointment, so the rule has one definition.

CREATE OR REPLACE FUNCTION remediation.host_conflicts_of(p_appointment_id bigint)
RETURNS TABLE (other_id bigint, host_key text, busy tstzrange, other_busy tstzrange)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT DISTINCT ON (h.other_id) h.other_id, h.host_key, h.busy, h.other_busy
    FROM remediation.host_overlaps h
    WHERE h.appointment_id = p_appointment_id
    ORDER BY h.other_id, lower(h.busy)
$$;
COMMENT ON FUNCTION remediation.host_conflicts_of(bigint) IS
    'Live appointments of the same host whose staff-required time overlaps this appointment''s (remediation.host_overlaps).';

CREATE OR REPLACE FUNCTION remediation.blocking_cause(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.blocking_cause FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.blocking_cause(bigint) IS
    'What in the data keeps the appointment from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL (remediation.sync_diagnosis).';

CREATE OR REPLACE FUNCTION remediation.failure_category(p_appointment_id bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT d.category FROM remediation.sync_diagnosis d WHERE d.appointment_id = p_appointment_id
$$;
COMMENT ON FUNCTION remediation.failure_category(bigint) IS
    'The category of a failing appointment''s sync: the worker''s verdict, else what blocks it in the data, else Cal.com''s message, else OTHER (remediation.sync_diagnosis).';

-- Diagnose the failures the app recorded, once, when they are recorded: the findings then read one row instead
-- of looking for the cause again (that lookup is what costs on a big table). The worker's failures carry
-- their category (sync_error_code) and are left alone. A diagnosis describes the failure as it was; a
-- fix shows in blocking_cause() (live), which is what the runbook's requeue step checks.
CREATE OR REPLACE FUNCTION remediation.diagnose_failures(p_appointment_ids bigint[]) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
    WITH diagnosed AS (
        INSERT INTO remediation.failure_diagnoses AS f (appointment_id, category, blocking_cause, error_code, diagnosed_at)
        SELECT d.appointment_id, d.category, d.blocking_cause, a.sync_error_code, now()
        FROM appointments a
        JOIN remediation.sync_diagnosis d ON d.appointment_id = a.id
        WHERE a.id = ANY (p_appointment_ids) AND (a.calcom_sync_status = 'failed' OR a.requires_manual_review)
          AND NOT EXISTS (SELECT 1 FROM remediation.categories k WHERE k.category = a.sync_error_code AND k.origin = 'worker')
        ON CONFLICT (appointment_id) DO UPDATE
            SET category = EXCLUDED.category, blocking_cause = EXCLUDED.blocking_cause, error_code = EXCLUDED.error_code,
                diagnosed_at = EXCLUDED.diagnosed_at
        RETURNING 1
    )
    SELECT count(*)::int FROM diagnosed
$$;
COMMENT ON FUNCTION remediation.diagnose_failures(bigint[]) IS
    'Record in remediation.failure_diagnoses why the app''s failures of these appointments happened (the worker''s failures are skipped); returns how many.';

CREATE OR REPLACE FUNCTION remediation.tg_appointments__diagnose_failure() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM remediation.diagnose_failures(ARRAY[NEW.id]);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION remediation.tg_appointments__diagnose_failure() IS
    'Trigger appointments_diagnose_failure: diagnose a failure when it is recorded.';

-- Revision 0005's backfill: diagnose the failing appointments after p_after_id, p_batch of them at once.
CREATE OR REPLACE FUNCTION remediation.backfill_failure_diagnoses(p_after_id bigint, p_batch integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION remediation.backfill_failure_diagnoses(bigint, integer) IS
    'Diagnose existing failures in batches (revision 0005); returns the last id done, NULL when there is none left.';
