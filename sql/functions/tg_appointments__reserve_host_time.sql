-- After INSERT of a simple live appointment with staff (the trigger's WHEN): its whole time, one row.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__reserve_host_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO calsync.host_busy_time (appointment_id, staff_id, host_id, busy)
    SELECT NEW.id, NEW.staff_id, calsync.host_id(s.calcom_user_id, NEW.staff_id),
           tstzmultirange(tstzrange(NEW.starts_at, NEW.ends_at, '[)'))
    FROM staff s WHERE s.id = NEW.staff_id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time() IS
    'Trigger appointments_reserve_host_time: a new simple appointment reserves its host''s time.';
