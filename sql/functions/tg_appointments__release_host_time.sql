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
