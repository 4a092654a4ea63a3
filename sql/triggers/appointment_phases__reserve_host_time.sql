-- New phases (one pass per statement, however many phases it inserts): their appointments are busy in
-- their staff-required phases instead of their whole time, one row each.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__insert_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM new_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__insert_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_insert: new phases reserve their host''s time.';

-- Changed phases (one pass per statement): recompute the appointments whose phases changed in what decides the
-- busy time (an appointment, staff need or time; the app rewrites unchanged phases, which cost one query over the
-- statement's transition tables and nothing else), and the appointments they left. A moved Dauerwelle's phases
-- are one recomputation, not one per phase. Joined on the phase id; a phase whose id changed counts as changed.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
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
COMMENT ON FUNCTION calsync.tg_appointment_phases__update_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_update: keep the busy time of appointments whose phases changed current.';

-- Deleted phases: recompute their appointments (which may now be busy for their whole time).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__delete_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(ARRAY(SELECT DISTINCT appointment_id FROM old_phases), false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__delete_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_delete: deleted phases free their time.';

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_insert
    AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__insert_host_time();

-- A statement trigger (its transition tables are the ones appointment_phases_enqueue_sync_update captures
-- already): one recomputation per statement, however many phases of an appointment it moved.
DROP TRIGGER IF EXISTS appointment_phases_reserve_host_time_update ON appointment_phases;
CREATE TRIGGER appointment_phases_reserve_host_time_update
    AFTER UPDATE ON appointment_phases REFERENCING OLD TABLE AS old_phases NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__update_host_time();

CREATE OR REPLACE TRIGGER appointment_phases_reserve_host_time_delete
    AFTER DELETE ON appointment_phases REFERENCING OLD TABLE AS old_phases
    FOR EACH STATEMENT EXECUTE FUNCTION calsync.tg_appointment_phases__delete_host_time();
