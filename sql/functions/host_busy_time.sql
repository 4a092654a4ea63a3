-- Rule: no double booking of a host. calsync.host_busy_time holds every live appointment's staff-required
-- time (calsync.appointment_busy_intervals) under an EXCLUDE constraint, kept by triggers.

-- Recompute one appointment's busy rows. A composite appointment without phases gets none until commit
-- (p_at_commit), when its phases exist (derived by appointments_composite_has_phases) or it is busy for
-- its whole time. The row lock serialises refreshes of one appointment across transactions.
CREATE OR REPLACE FUNCTION calsync.refresh_host_busy_time(p_appointment_id bigint, p_at_commit boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_composite boolean;
    v_clash record;
BEGIN
    SELECT is_composite INTO v_composite FROM appointments WHERE id = p_appointment_id FOR NO KEY UPDATE;
    DELETE FROM calsync.host_busy_time WHERE appointment_id = p_appointment_id;
    IF NOT FOUND AND v_composite IS NULL THEN
        RETURN;  -- the appointment is gone
    END IF;
    -- name the booking in the way (the EXCLUDE constraint stays the guarantee under races)
    SELECT i.busy AS wanted, b.busy AS taken, b.appointment_id AS other, i.host_key INTO v_clash
    FROM calsync.appointment_busy_intervals i
    JOIN calsync.host_busy_time b ON b.host_key = i.host_key AND b.busy && i.busy
    WHERE i.appointment_id = p_appointment_id AND (i.phase_id IS NOT NULL OR NOT v_composite OR p_at_commit)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = '23P01',
            CONSTRAINT = 'host_busy_time_no_overlap',
            TABLE = 'host_busy_time',
            SCHEMA = 'calsync',
            MESSAGE = format('host %s is already booked %s by appointment #%s; appointment #%s needs %s',
                             v_clash.host_key, v_clash.taken, v_clash.other, p_appointment_id, v_clash.wanted),
            HINT = 'Choose another time or another host, or cancel the other appointment first.';
    END IF;
    INSERT INTO calsync.host_busy_time (appointment_id, phase_id, staff_id, host_key, busy)
    SELECT i.appointment_id, i.phase_id, i.staff_id, i.host_key, i.busy
    FROM calsync.appointment_busy_intervals i
    WHERE i.appointment_id = p_appointment_id AND (i.phase_id IS NOT NULL OR NOT v_composite OR p_at_commit);
END
$$;
COMMENT ON FUNCTION calsync.refresh_host_busy_time(bigint, boolean) IS
    'Recompute one appointment''s rows in calsync.host_busy_time; refuses (23P01) when its host is already booked.';

CREATE OR REPLACE FUNCTION calsync.tg_appointments__reserve_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calsync.refresh_host_busy_time(NEW.id, TG_ARGV[0] = 'at_commit');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time() IS
    'Triggers appointments_reserve_host_time(_at_commit): keep the appointment''s host busy time current.';

CREATE OR REPLACE FUNCTION calsync.tg_appointment_phases__reserve_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM calsync.refresh_host_busy_time(c.appointment_id, false)
        FROM (SELECT DISTINCT appointment_id FROM old_phases ORDER BY 1) AS c;
    ELSE
        PERFORM calsync.refresh_host_busy_time(c.appointment_id, false)
        FROM (SELECT DISTINCT appointment_id FROM new_phases ORDER BY 1) AS c;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointment_phases__reserve_host_time() IS
    'Statement triggers appointment_phases_reserve_host_time_*: refresh each touched appointment''s busy time once.';

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
                        'its host was booked for an overlapping time while revision 0010 was being applied',
                        'backfill of revision 0010')
                ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING;
            END;
        END LOOP;
    END;
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.backfill_host_busy_time(bigint, integer) IS
    'One batch of the host busy-time backfill: appointments with id in (after_id, returned id]; NULL when done.';
