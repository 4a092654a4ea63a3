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
