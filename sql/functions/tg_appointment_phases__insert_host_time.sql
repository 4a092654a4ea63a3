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
