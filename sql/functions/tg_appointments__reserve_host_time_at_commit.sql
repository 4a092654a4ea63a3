-- At commit: a composite appointment still without phases is busy for its whole time.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        PERFORM calsync.refresh_host_busy_time(ARRAY[NEW.id], true);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__reserve_host_time_at_commit() IS
    'Deferred trigger appointments_reserve_host_time_at_commit: a composite appointment without phases is busy for its whole time.';
