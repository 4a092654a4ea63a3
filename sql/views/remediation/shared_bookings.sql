-- A building block of the findings, one row per appointment (or pair) and written so that a filter on
-- appointment_id reaches the indexes: the per-appointment functions (sql/functions/remediation/) read it
-- with such a filter, the findings views drive it from the partial indexes over the problem rows.

-- Pairs of live appointments that are one booking twice: the same customer, start and service, or the same
-- Cal.com booking (id or uid). Each of the three is one index lookup per appointment.
CREATE OR REPLACE VIEW remediation.shared_bookings AS
SELECT a.id AS appointment_id, x.other_id, x.reason
FROM appointments a
CROSS JOIN LATERAL (
    SELECT d.id AS other_id, 'same customer, start and service' AS reason FROM appointments d
    WHERE d.customer_id = a.customer_id AND d.starts_at = a.starts_at AND d.service_id = a.service_id
      AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    UNION ALL
    SELECT d.id, 'same Cal.com booking ' || d.calcom_booking_id FROM appointments d
    WHERE d.calcom_booking_id = a.calcom_booking_id AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    UNION ALL
    SELECT d.id, 'same Cal.com booking ' || d.calcom_v2_booking_uid FROM appointments d
    WHERE d.calcom_v2_booking_uid = a.calcom_v2_booking_uid AND d.id <> a.id AND d.status NOT IN ('cancelled', 'no_show')
    OFFSET 0
) AS x
WHERE a.status NOT IN ('cancelled', 'no_show');
COMMENT ON VIEW remediation.shared_bookings IS
    'Pairs of live appointments that are one booking twice (same customer, start and service, or same Cal.com booking). Filter by appointment_id; remediation.duplicate_bookings lists the ones to resolve.';
COMMENT ON COLUMN remediation.shared_bookings.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.shared_bookings.other_id IS 'another live appointment that is the same booking';
COMMENT ON COLUMN remediation.shared_bookings.reason IS 'what they share';
