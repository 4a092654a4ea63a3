-- Rescheduling shifts the phases (a move that would take them past timestamptz's range is refused by the
-- rule appointment_phases_within_time_range); a new service supersedes them (kept in
-- calsync.superseded_phases with their Cal.com bookings) and the deferred trigger derives the new
-- service's phases at commit.
CREATE OR REPLACE FUNCTION calsync.tg_appointments__keep_phases_in_step() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.service_id IS DISTINCT FROM OLD.service_id THEN
        WITH gone AS (
            DELETE FROM appointment_phases WHERE appointment_id = NEW.id
            RETURNING id, appointment_id, sequence_order, phase_type, segment_key, segment_name, staff_required,
                      start_time, end_time, calcom_booking_id, calcom_booking_uid, calcom_sync_status
        )
        INSERT INTO calsync.superseded_phases (phase_id, appointment_id, sequence_order, phase_type, segment_key,
                                               segment_name, staff_required, start_time, end_time,
                                               calcom_booking_id, calcom_booking_uid, calcom_sync_status, reason)
        SELECT gone.*, format('service changed from %s to %s', OLD.service_id, NEW.service_id) FROM gone;
    ELSIF NEW.starts_at IS DISTINCT FROM OLD.starts_at
          -- an appointment without phases (every simple one) has nothing to shift: one index probe, and no
          -- UPDATE whose statement triggers would run for no row
          AND EXISTS (SELECT 1 FROM appointment_phases WHERE appointment_id = NEW.id) THEN
        IF EXISTS (SELECT 1 FROM appointment_phases
                   WHERE appointment_id = NEW.id
                     AND NOT calsync.phase_fits_time_range(NEW.starts_at, start_offset_minutes, duration_minutes)) THEN
            PERFORM calsync.refuse_phases_outside_time_range(NEW.id, NEW.starts_at);
        END IF;
        UPDATE appointment_phases
        SET start_time = NEW.starts_at + make_interval(mins => start_offset_minutes),
            end_time = NEW.starts_at + make_interval(mins => start_offset_minutes) + make_interval(mins => duration_minutes),
            updated_at = now()
        WHERE appointment_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_appointments__keep_phases_in_step() IS
    'Trigger appointments_phases_follow_appointment: a reschedule shifts the phases, a service change supersedes them.';

CREATE OR REPLACE TRIGGER appointments_phases_follow_appointment
    AFTER UPDATE OF starts_at, service_id ON appointments
    FOR EACH ROW WHEN (NEW.starts_at IS DISTINCT FROM OLD.starts_at OR NEW.service_id IS DISTINCT FROM OLD.service_id)
    EXECUTE FUNCTION calsync.tg_appointments__keep_phases_in_step();
