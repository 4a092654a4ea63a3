CREATE OR REPLACE VIEW remediation.reconcile_findings AS
SELECT o.id AS finding_id, o.kind, o.repair, o.uid, o.appointment_id, o.slot, o.calcom_start, o.calcom_end,
       o.our_start, o.our_end, o.successor_uid, o.detail,
       CASE o.repair
           WHEN 'cancel_at_calcom' THEN 'calsync made this booking and no live appointment holds it: `calsync reconcile --repair` cancels it at Cal.com'
           WHEN 'requeue' THEN '`calsync reconcile --repair` queues the appointment for the worker (the salon''s booking holds)'
           WHEN 'apply_reschedule' THEN '`calsync reconcile --repair` moves the appointment to Cal.com''s new time if the integrity rules accept it, else it becomes a person''s'
           WHEN 'adopt_successor' THEN '`calsync reconcile --repair` records the booking Cal.com moved it to'
           ELSE 'a person decides: ' || CASE o.kind
               WHEN 'orphan_at_calcom' THEN 'enter the booking in the salon app, or cancel it at Cal.com'
               WHEN 'orphan_here' THEN 'cancel the appointment in the salon app, or requeue it to book it again'
               ELSE 'move the appointment in the salon app, or requeue it to move the booking back' END
       END AS recommended_action,
       o.found_at, o.last_seen_at, o.found_by, o.last_seen_by
FROM calsync.reconcile_findings o
WHERE o.resolved_at IS NULL;
COMMENT ON VIEW remediation.reconcile_findings IS
    'Open findings of `calsync reconcile`: bookings at Cal.com no live appointment holds (orphan_at_calcom), our bookings Cal.com lost or cancelled (orphan_here), and drift of time or length (drift), with the repair and what to do.';
COMMENT ON COLUMN remediation.reconcile_findings.finding_id IS 'the finding (calsync.reconcile_findings.id)';
COMMENT ON COLUMN remediation.reconcile_findings.kind IS 'orphan_at_calcom, orphan_here or drift';
COMMENT ON COLUMN remediation.reconcile_findings.repair IS 'cancel_at_calcom, requeue, apply_reschedule, adopt_successor (done by --repair) or person';
COMMENT ON COLUMN remediation.reconcile_findings.uid IS 'the Cal.com booking: the orphan at Cal.com, or ours';
COMMENT ON COLUMN remediation.reconcile_findings.appointment_id IS 'our appointment (for an orphan at Cal.com: the one its metadata names, if it exists)';
COMMENT ON COLUMN remediation.reconcile_findings.slot IS '0: the appointment''s own booking; else the phase id';
COMMENT ON COLUMN remediation.reconcile_findings.calcom_start IS 'the live booking''s start at Cal.com (the successor''s for an outside reschedule)';
COMMENT ON COLUMN remediation.reconcile_findings.calcom_end IS 'its end at Cal.com';
COMMENT ON COLUMN remediation.reconcile_findings.our_start IS 'the start here (appointment or phase)';
COMMENT ON COLUMN remediation.reconcile_findings.our_end IS 'the end here';
COMMENT ON COLUMN remediation.reconcile_findings.successor_uid IS 'for an outside reschedule: the booking Cal.com moved ours to';
COMMENT ON COLUMN remediation.reconcile_findings.detail IS 'what was found, in words (ids, uids and times only)';
COMMENT ON COLUMN remediation.reconcile_findings.recommended_action IS 'what to do';
COMMENT ON COLUMN remediation.reconcile_findings.found_at IS 'when a reconciliation found it first';
COMMENT ON COLUMN remediation.reconcile_findings.last_seen_at IS 'when a reconciliation found it last';
COMMENT ON COLUMN remediation.reconcile_findings.found_by IS 'the reconcile run that found it first';
COMMENT ON COLUMN remediation.reconcile_findings.last_seen_by IS 'the reconcile run that found it last';
