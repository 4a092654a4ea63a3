-- A building block of the findings, one row per appointment (or pair) and written so that a filter on
-- appointment_id reaches the indexes: the per-appointment functions (sql/functions/remediation/) read it
-- with such a filter, the findings views drive it from the partial indexes over the problem rows.

-- The appointments the findings start from: not settled at Cal.com (sync pending or failed), flagged for
-- a person, or listed in an open integrity issue. Each part is read from its own index, so the findings
-- stay fast however large the table is; an appointment that is synced and breaks no listed rule is settled.
CREATE OR REPLACE VIEW remediation.unsettled_appointments AS
SELECT a.id AS appointment_id FROM appointments a WHERE a.calcom_sync_status IN ('failed', 'pending')
UNION
SELECT a.id FROM appointments a WHERE a.requires_manual_review
UNION
SELECT i.row_id FROM calsync.integrity_issues i WHERE i.table_name = 'appointments' AND i.resolved_at IS NULL;
COMMENT ON VIEW remediation.unsettled_appointments IS
    'Appointments not settled: sync pending or failed, flagged for manual review, or in an open integrity issue. The findings views start from these.';
COMMENT ON COLUMN remediation.unsettled_appointments.appointment_id IS 'the appointment';
