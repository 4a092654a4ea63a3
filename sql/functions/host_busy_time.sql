-- Rule: no double booking of a host. calsync.host_busy_time holds every live appointment's staff-required
-- time (the definition is the view calsync.appointment_busy_intervals) under the EXCLUDE constraint
-- host_busy_time_no_overlap (host_key WITH =, busy WITH &&, appointment_id WITH <>); triggers keep it
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
    INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_key, busy)
    SELECT i.appointment_id, i.phase_id, i.staff_id, i.host_key, i.busy
    FROM calsync.appointment_busy_intervals i
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
        INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_key, busy)
        SELECT NEW.id, NULL, NEW.staff_id, calsync.host_key(s.calcom_user_id, NEW.staff_id),
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
    INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_key, busy)
    SELECT a.id, p.id, a.staff_id, calsync.host_key(s.calcom_user_id, a.staff_id),
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

-- Changed phases: a time change moves the phase's row; any other change of what decides the busy time
-- (staff need, appointment) recomputes the appointments concerned. Unchanged rewrites cost nothing.
CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__update_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE calsync.host_busy_time b SET busy = tstzrange(n.start_time, n.end_time, '[)')
    FROM new_phases n JOIN old_phases o ON o.id = n.id
    WHERE b.appointment_id = n.appointment_id AND b.phase_id = n.id
      AND n.appointment_id = o.appointment_id AND n.staff_required = o.staff_required
      AND (n.start_time, n.end_time) IS DISTINCT FROM (o.start_time, o.end_time) AND n.end_time > n.start_time;
    PERFORM calsync.refresh_host_busy_time(c.appointment_id, false)
    FROM (SELECT DISTINCT x.appointment_id
          FROM new_phases n JOIN old_phases o ON o.id = n.id,
               LATERAL (VALUES (n.appointment_id), (o.appointment_id)) AS x(appointment_id)
          WHERE n.appointment_id <> o.appointment_id OR n.staff_required <> o.staff_required
             OR (n.end_time <= n.start_time AND (n.start_time, n.end_time) IS DISTINCT FROM (o.start_time, o.end_time))
          ORDER BY 1) AS c;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__update_host_time() IS
    'Statement trigger appointment_phases_reserve_host_time_update: keep changed phases'' busy time current.';

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
    UPDATE calsync.host_busy_time SET host_key = calsync.host_key(NEW.calcom_user_id, NEW.id)
    WHERE staff_id = NEW.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_staff__rekey_host_busy_time() IS
    'Trigger staff_rekey_host_busy_time: a staff row''s new Cal.com user makes its bookings that user''s busy time.';

-- Backfill of the revision, in batches by appointment id. Rows are locked FOR SHARE first, so a writer
-- refreshing one of them waits for the batch, and the batch then reads their committed state.
CREATE OR REPLACE FUNCTION calsync.backfill_host_busy_time(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_id bigint;
BEGIN
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM appointments WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM appointments WHERE id > p_after_id AND id <= v_last FOR SHARE;
    DELETE FROM calsync.host_busy_time WHERE appointment_id > p_after_id AND appointment_id <= v_last;
    BEGIN
        INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_key, busy)
        SELECT i.appointment_id, i.phase_id, i.staff_id, i.host_key, i.busy
        FROM calsync.appointment_busy_intervals i
        WHERE i.appointment_id > p_after_id AND i.appointment_id <= v_last
          AND NOT EXISTS (SELECT 1 FROM calsync.integrity_issues x
                          WHERE x.rule = 'host_busy_time_no_overlap' AND x.table_name = 'appointments'
                            AND x.row_id = i.appointment_id AND x.resolved_at IS NULL);
    EXCEPTION WHEN exclusion_violation THEN
        -- a booking made while the backfill ran overlaps an older one: list the older one, go on
        FOR v_id IN SELECT DISTINCT i.appointment_id FROM calsync.appointment_busy_intervals i
                    WHERE i.appointment_id > p_after_id AND i.appointment_id <= v_last ORDER BY 1
        LOOP
            BEGIN
                INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_key, busy)
                SELECT i.appointment_id, i.phase_id, i.staff_id, i.host_key, i.busy
                FROM calsync.appointment_busy_intervals i WHERE i.appointment_id = v_id;
            EXCEPTION WHEN exclusion_violation THEN
                INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
                VALUES ('host_busy_time_no_overlap', 'appointments', v_id,
                        'its host was booked for an overlapping time while revision 0012 was being applied',
                        'backfill of revision 0012')
                ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING;
            END;
        END LOOP;
    END;
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.backfill_host_busy_time(bigint, integer) IS
    'One batch of the host busy-time backfill: appointments with id in (after_id, returned id]; NULL when done.';
