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
