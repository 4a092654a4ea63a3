-- Backfill of the revision: existing live composite appointments without phases, in batches by id. The
-- phases complete old rows; they are not news for Cal.com (calsync.writer = 'backfill': nothing enqueued),
-- so bookings made before are not rebooked. A failing one is retried by the runbook's requeue step.
CREATE OR REPLACE FUNCTION calsync.backfill_composite_phases(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
    v_id bigint;
BEGIN
    PERFORM set_config('calsync.writer', 'backfill', true);
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM appointments WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    FOR v_id IN
        SELECT a.id FROM appointments a
        WHERE a.id > p_after_id AND a.id <= v_last AND a.is_composite
          AND a.status NOT IN ('cancelled', 'no_show')
          AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
        ORDER BY a.id
    LOOP
        PERFORM calsync.create_missing_phases(v_id, 'backfill of revision 0011');
    END LOOP;
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.backfill_composite_phases(bigint, integer) IS
    'One batch of the composite-phases backfill: appointments with id in (after_id, returned id]; NULL when done.';
