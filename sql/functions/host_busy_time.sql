-- Rule: no double booking of a host. calsync.host_busy_time holds every live appointment's staff-required
-- time (the definition is the view calsync.appointment_busy_intervals) under the EXCLUDE constraint
-- host_busy_time_no_overlap (host_id WITH =, busy WITH &&, appointment_id WITH <>); triggers keep it
-- current. A violation's DETAIL names both appointments. The common writes take set-based fast paths;
-- anything else recomputes the appointment from the view. tests check the table always equals the view.

-- Recompute one appointment's busy rows from the view. A composite appointment without phases gets none
-- until commit (p_at_commit), when its phases exist (derived by appointments_composite_has_phases) or it
-- is busy for its whole time. Refreshes of one appointment are serialised across transactions by its row
-- lock; a row this transaction wrote is locked already, so the lock (and its WAL) is only taken otherwise.
CREATE OR REPLACE FUNCTION calsync.refresh_host_busy_time(p_appointment_id bigint, p_at_commit boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_composite boolean;
    v_ours boolean;
BEGIN
    SELECT is_composite, xmin = pg_current_xact_id()::xid INTO v_composite, v_ours
    FROM appointments WHERE id = p_appointment_id;
    IF FOUND AND NOT v_ours THEN
        SELECT is_composite INTO v_composite FROM appointments WHERE id = p_appointment_id FOR NO KEY UPDATE;
    END IF;
    DELETE FROM calsync.host_busy_time WHERE appointment_id = p_appointment_id;
    INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_id, busy)
    SELECT i.appointment_id, i.phase_id, i.staff_id, calsync.host_id(s.calcom_user_id, i.staff_id), i.busy
    FROM calsync.appointment_busy_intervals i
    JOIN staff s ON s.id = i.staff_id
    WHERE i.appointment_id = p_appointment_id AND (i.phase_id IS NOT NULL OR NOT v_composite OR p_at_commit);
END
$$;
COMMENT ON FUNCTION calsync.refresh_host_busy_time(bigint, boolean) IS
    'Recompute one appointment''s rows in calsync.host_busy_time from calsync.appointment_busy_intervals.';

-- After INSERT of a simple live appointment with staff: its whole time (the view's second branch).
CREATE OR REPLACE FUNCTION calsync.tg_appointments__reserve_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ends_at > NEW.starts_at THEN
        INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_id, busy)
        SELECT NEW.id, NULL, NEW.staff_id, calsync.host_id(s.calcom_user_id, NEW.staff_id),
               tstzrange(NEW.starts_at, NEW.ends_at, '[)')
        FROM staff s WHERE s.id = NEW.staff_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time() IS
    'Trigger appointments_reserve_host_time: a new simple appointment reserves its host''s time.';

-- After UPDATE of what decides the busy time. A time change of a simple appointment moves its one row;
-- a time change of one with phases is left to the phases' trigger (appointments_phases_follow_appointment
-- shifts them); anything else recomputes.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.staff_id IS NOT DISTINCT FROM OLD.staff_id AND NEW.status IS NOT DISTINCT FROM OLD.status
       AND NEW.service_id IS NOT DISTINCT FROM OLD.service_id THEN
        IF NOT NEW.is_composite AND NEW.ends_at > NEW.starts_at THEN
            UPDATE calsync.host_busy_time SET busy = tstzrange(NEW.starts_at, NEW.ends_at, '[)')
            WHERE appointment_id = NEW.id AND phase_id IS NULL;
            IF FOUND THEN
                RETURN NULL;
            END IF;
        ELSIF EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM calsync.refresh_host_busy_time(NEW.id, false);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__update_host_time() IS
    'Trigger appointments_reserve_host_time_on_change: keep the busy time of a changed appointment current.';

-- At commit: a composite appointment still without phases is busy for its whole time.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        PERFORM calsync.refresh_host_busy_time(NEW.id, true);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() IS
    'Deferred trigger appointments_reserve_host_time_at_commit: a composite appointment without phases is busy for its whole time.';

-- A deleted appointment frees its host (the table has no foreign key: its check would lock the
-- appointment row on every reservation).
CREATE OR REPLACE FUNCTION calsync.tg_appointments__release_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM calsync.host_busy_time b USING old_appointments o WHERE b.appointment_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__release_host_time() IS
    'Statement trigger appointments_release_host_time: deleted appointments free their busy time.';

-- New phases: their appointment is busy in its staff-required phases instead of its whole time.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__insert_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- serialise with other transactions' refreshes of appointments this one did not write
    PERFORM 1 FROM appointments a
    WHERE a.id IN (SELECT appointment_id FROM new_phases) AND a.xmin <> pg_current_xact_id()::xid
    ORDER BY a.id FOR NO KEY UPDATE;
    DELETE FROM calsync.host_busy_time b
    WHERE b.appointment_id IN (SELECT appointment_id FROM new_phases) AND b.phase_id IS NULL;
    INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_id, busy)
    SELECT a.id, p.id, a.staff_id, calsync.host_id(s.calcom_user_id, a.staff_id),
           tstzrange(p.start_time, p.end_time, '[)')
    FROM new_phases p
    JOIN appointments a ON a.id = p.appointment_id
    JOIN staff s ON s.id = a.staff_id
    WHERE p.staff_required AND p.end_time > p.start_time AND a.status NOT IN ('cancelled', 'no_show');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__insert_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_insert: new phases reserve their host''s time.';

-- A changed phase (row trigger; its WHEN lets through only changes of what decides the busy time, so the
-- app's unchanged rewrites and its statements that change no row cost nothing). A staff-required phase
-- moved from one non-empty time to another moves its row, if it has one: without one its appointment is
-- not live or has no staff, which the move doesn't change. Anything else recomputes the appointments.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.appointment_id = OLD.appointment_id AND NEW.staff_required AND OLD.staff_required
       AND NEW.end_time > NEW.start_time AND OLD.end_time > OLD.start_time THEN
        UPDATE calsync.host_busy_time SET busy = tstzrange(NEW.start_time, NEW.end_time, '[)')
        WHERE appointment_id = NEW.appointment_id AND phase_id = NEW.id;
        RETURN NULL;
    END IF;
    PERFORM calsync.refresh_host_busy_time(x.appointment_id, false)
    FROM (SELECT DISTINCT x FROM unnest(ARRAY[OLD.appointment_id, NEW.appointment_id]) AS x ORDER BY 1) AS x(appointment_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__update_host_time() IS
    'Trigger appointment_phases_reserve_host_time_update: keep a changed phase''s busy time current.';

-- Deleted phases: recompute their appointments (which may now be busy for their whole time).
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__delete_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(c.appointment_id, false)
    FROM (SELECT DISTINCT appointment_id FROM old_phases ORDER BY 1) AS c;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__delete_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_delete: deleted phases free their time.';

CREATE OR REPLACE FUNCTION calsync.tg_staff__rekey_host_busy_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- the rows of this staff row carry its old key: found through the exclusion constraint's index
    UPDATE calsync.host_busy_time SET host_id = calsync.host_id(NEW.calcom_user_id, NEW.id)
    WHERE host_id = calsync.host_id(OLD.calcom_user_id, OLD.id) AND staff_id = NEW.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_staff__rekey_host_busy_time() IS
    'Trigger staff_rekey_host_busy_time: a staff row''s new Cal.com user makes its bookings that user''s busy time.';
