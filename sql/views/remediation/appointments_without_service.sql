CREATE OR REPLACE VIEW remediation.appointments_without_service AS
SELECT a.id AS appointment_id, a.customer_id, a.starts_at, a.status, a.calcom_sync_status
FROM appointments a
WHERE a.service_id IS NULL AND a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW remediation.appointments_without_service IS 'Live appointments without a service (like the incident''s #15): cancel them or set the service.';
COMMENT ON COLUMN remediation.appointments_without_service.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.appointments_without_service.customer_id IS 'its customer';
COMMENT ON COLUMN remediation.appointments_without_service.starts_at IS 'its start';
COMMENT ON COLUMN remediation.appointments_without_service.status IS 'its status';
COMMENT ON COLUMN remediation.appointments_without_service.calcom_sync_status IS 'its sync status';
