-- Frozen SQL of revision 0027 (never edit; sql/ holds the current definitions).

-- name: functions
-- from: sql/functions/calcom_change_blocker.sql
-- from: sql/functions/webhook_setting.sql
-- from: sql/functions/remediation/diagnose_failures.sql
-- What keeps a change from Cal.com from applying to an appointment right now, by one rule: a Cal.com change is
-- made on the appointment as Cal.com last had it. 'in_flight': the worker holds an event of the appointment (its
-- result is not recorded yet; the change waits for it, parked). 'app_change': the app changed the appointment and
-- that change has not reached Cal.com yet (an undelivered, not dead, outbox event): the app's version is newer, so
-- it wins and goes to Cal.com. NULL: nothing; the change is applied under the optimistic version check.
-- PL/pgSQL, not SQL: a SQL function with a SET clause is never inlined and is planned again in every transaction
-- that calls it (0.35-0.8 ms, ten times its run); PL/pgSQL keeps the plan for the session (revision 0027).
CREATE OR REPLACE FUNCTION calsync.calcom_change_blocker(p_appointment_id bigint) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
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
COMMENT ON FUNCTION calsync.calcom_change_blocker(bigint) IS
    'in_flight (the worker holds an event of the appointment), app_change (an undelivered app change is newer than Cal.com''s view) or NULL.';

-- The webhook receiver's intervals from calsync.settings (webhook_park_base, webhook_park_cap, webhook_park_max),
-- with their defaults when a row is missing.
-- PL/pgSQL, not SQL: a SQL function with a SET clause is never inlined and is planned again in every transaction
-- that calls it; PL/pgSQL keeps the plan for the session (revision 0027).
CREATE OR REPLACE FUNCTION calsync.webhook_setting(p_key text) RETURNS interval
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
    RETURN coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'webhook_park_base' THEN interval '2 seconds'
                               WHEN 'webhook_park_cap' THEN interval '5 minutes'
                               WHEN 'webhook_park_max' THEN interval '1 day' END);
END
$$;
COMMENT ON FUNCTION calsync.webhook_setting(text) IS
    'An interval setting of the webhook receiver (calsync.settings), else its default.';

-- Diagnose the failures the app recorded, once, when they are recorded: the findings then read one row instead
-- of looking for the cause again (that lookup is what costs on a big table). The worker's failures carry
-- their category (sync_error_code) and are left alone. A diagnosis describes the failure as it was; a
-- fix shows in blocking_cause() (live), which is what the runbook's requeue step checks.
-- PL/pgSQL, not SQL: a SQL function with SET clauses is planned again on every call, and planning this one
-- (remediation.sync_diagnosis is a wide view) took 14 ms where running it takes under 2; every flagged
-- appointment's UPDATE paid it (a webhook conflict, a refusal, a failure). PL/pgSQL keeps the plan for the
-- session, and the generic plan from the first call (its five custom plans first would be planned again each,
-- and a receiver's session sees a handful of conflicts in all): one index probe by id either way (revision 0027).
CREATE OR REPLACE FUNCTION remediation.diagnose_failures(p_appointment_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off
SET plan_cache_mode = force_generic_plan AS $$
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
COMMENT ON FUNCTION remediation.diagnose_failures(bigint[]) IS
    'Record in remediation.failure_diagnoses why the app''s failures of these appointments happened (the worker''s failures are skipped); returns how many.';

-- name: previous_functions
-- revision 0021's calsync.calcom_change_blocker and calsync.webhook_setting, revision 0005's remediation.diagnose_failures
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

