-- The rule appointment_phases_within_time_range: a composite appointment whose phases would leave
-- timestamptz's range is refused by name (SQLSTATE 23514), never with an unnamed 22008.
CREATE OR REPLACE FUNCTION calsync.refuse_phases_outside_time_range(p_appointment_id bigint, p_start timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '23514',
        CONSTRAINT = 'appointment_phases_within_time_range',
        TABLE = 'appointment_phases',
        MESSAGE = format('appointment %s starting %s: its phases would end after timestamptz''s last instant (294276-12-31 23:59:59.999999 UTC)',
                         p_appointment_id, p_start),
        HINT = 'Book the appointment at a real time.';
END
$$;
COMMENT ON FUNCTION calsync.refuse_phases_outside_time_range(bigint, timestamptz) IS
    'Rule appointment_phases_within_time_range: raises 23514 for an appointment whose phases would leave timestamptz''s range.';
