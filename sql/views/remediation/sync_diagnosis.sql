-- A building block of the findings, one row per appointment (or pair) and written so that a filter on
-- appointment_id reaches the indexes: the per-appointment functions (sql/functions/remediation/) read it
-- with such a filter, the findings views drive it from the partial indexes over the problem rows.

-- Why an appointment does not sync. blocking_cause: what in the data keeps it from syncing (checked in this
-- order): a composite without phases or staff, invalid phases, a double booking (same slot, same Cal.com
-- booking, or its host booked twice at once), a customer without any usable contact. category: the
-- worker's verdict (sync_error_code) wins; for failures from before the worker (the app's HTTP_400 rows with
-- cut messages) the data decides, then what is left of Cal.com's message; else OTHER.
CREATE OR REPLACE VIEW remediation.sync_diagnosis AS
SELECT a.id AS appointment_id,
       x.blocking_cause,
       coalesce(w.category, x.blocking_cause,
                CASE WHEN a.sync_error_message ILIKE '%in the past%' THEN 'PAST_APPOINTMENT'
                     WHEN a.sync_error_message ILIKE '%already has booking%'
                          OR a.sync_error_message ILIKE '%not available%' THEN 'HOST_UNAVAILABLE' END,
                'OTHER') AS category
FROM appointments a
LEFT JOIN customers c ON c.id = a.customer_id
LEFT JOIN remediation.categories w ON w.category = a.sync_error_code AND w.origin = 'worker'
CROSS JOIN LATERAL (
    -- OFFSET 0 in the EXISTS keeps each a lookup for this appointment (never a hash of the whole table)
    SELECT CASE
        WHEN a.is_composite AND (a.staff_id IS NULL
                                 OR NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id))
            THEN 'COMPOSITE_FAILURE'
        WHEN EXISTS (SELECT 1 FROM remediation.broken_phases b WHERE b.appointment_id = a.id OFFSET 0)
            THEN 'PHASE_ERROR'
        WHEN EXISTS (SELECT 1 FROM remediation.shared_bookings d WHERE d.appointment_id = a.id OFFSET 0)
             OR EXISTS (SELECT 1 FROM remediation.host_overlaps h WHERE h.appointment_id = a.id OFFSET 0)
            THEN 'DOUBLE_BOOKING'
        WHEN NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone) THEN 'MISSING_CONTACT'
    END AS blocking_cause
) AS x;
COMMENT ON VIEW remediation.sync_diagnosis IS
    'Why each appointment does (or would) fail to sync. Filter by appointment_id; remediation.failed_syncs lists the failing ones.';
COMMENT ON COLUMN remediation.sync_diagnosis.appointment_id IS 'the appointment';
COMMENT ON COLUMN remediation.sync_diagnosis.blocking_cause IS
    'what in the data keeps it from syncing: COMPOSITE_FAILURE, PHASE_ERROR, DOUBLE_BOOKING, MISSING_CONTACT, or NULL';
COMMENT ON COLUMN remediation.sync_diagnosis.category IS
    'its failure category (remediation.categories): the worker''s verdict, else the blocking cause, else Cal.com''s message, else OTHER';
