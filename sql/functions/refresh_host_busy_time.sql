-- Rule: no double booking of a host. calsync.host_busy_time holds one row per live appointment with busy
-- time: all of its staff-required time as one multirange (the definition is the view
-- calsync.appointment_busy_intervals, one row per interval), keyed by its host as a bigint
-- (calsync.host_id), under the EXCLUDE constraint host_busy_time_no_overlap (host_id WITH =, busy WITH &&,
-- (appointment_id + 0) WITH <>); triggers keep it current. A violation's DETAIL names both appointments. The
-- common writes (a simple booking, its move) take a fast path of one statement; anything else recomputes
-- the appointments concerned here, in one statement. Tests check the table always equals the view.

-- Recompute the busy rows of the given appointments from the view: the union of their intervals, or no
-- row. A composite appointment without phases gets none until commit (p_at_commit), when its phases exist
-- (derived by appointments_composite_has_phases) or it is busy for its whole time. Recomputations of one
-- appointment are serialised across transactions by its row lock; a row this transaction wrote is locked
-- already, so the lock (and its WAL) is only taken otherwise. A result equal to the stored row writes nothing.
CREATE OR REPLACE FUNCTION calsync.refresh_host_busy_time(p_appointment_ids bigint[], p_at_commit boolean)
RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM 1 FROM appointments a
    WHERE a.id = ANY (p_appointment_ids) AND a.xmin <> pg_current_xact_id()::xid
    ORDER BY a.id FOR NO KEY UPDATE;
    WITH busy AS (
        SELECT i.appointment_id, i.staff_id, calsync.host_id(s.calcom_user_id, i.staff_id) AS host_id,
               range_agg(i.busy) AS busy
        FROM calsync.appointment_busy_intervals i
        JOIN appointments a ON a.id = i.appointment_id
        JOIN staff s ON s.id = i.staff_id
        WHERE i.appointment_id = ANY (p_appointment_ids) AND (i.phase_id IS NOT NULL OR NOT a.is_composite OR p_at_commit)
        GROUP BY i.appointment_id, i.staff_id, s.calcom_user_id
    ), gone AS (
        DELETE FROM calsync.host_busy_time b
        WHERE b.appointment_id = ANY (p_appointment_ids)
          AND NOT EXISTS (SELECT 1 FROM busy x WHERE x.appointment_id = b.appointment_id)
    )
    INSERT INTO calsync.host_busy_time AS b (appointment_id, staff_id, host_id, busy)
    SELECT appointment_id, staff_id, host_id, busy FROM busy
    ON CONFLICT (appointment_id) DO UPDATE
    SET staff_id = EXCLUDED.staff_id, host_id = EXCLUDED.host_id, busy = EXCLUDED.busy
    WHERE (b.staff_id, b.host_id, b.busy) IS DISTINCT FROM (EXCLUDED.staff_id, EXCLUDED.host_id, EXCLUDED.busy);
END
$$;
COMMENT ON FUNCTION calsync.refresh_host_busy_time(bigint[], boolean) IS
    'Recompute the given appointments'' rows in calsync.host_busy_time from calsync.appointment_busy_intervals.';
