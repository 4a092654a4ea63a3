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
