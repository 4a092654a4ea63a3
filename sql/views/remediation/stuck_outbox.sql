CREATE OR REPLACE VIEW remediation.stuck_outbox AS
SELECT o.id AS outbox_id, o.aggregateid::bigint AS appointment_id, o.type, o.created_at,
       now() - o.created_at AS age, d.status, d.attempts, d.next_attempt_at, d.locked_by, d.locked_until,
       d.last_category, d.last_error
FROM calsync.outbox o
LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
WHERE d.status IS DISTINCT FROM 'dead' AND o.created_at < now() - interval '5 minutes';
COMMENT ON VIEW remediation.stuck_outbox IS 'Outbox events undelivered for more than 5 minutes (not dead): is the worker running, is Cal.com answering?';
COMMENT ON COLUMN remediation.stuck_outbox.outbox_id IS 'the event';
COMMENT ON COLUMN remediation.stuck_outbox.appointment_id IS 'its appointment';
COMMENT ON COLUMN remediation.stuck_outbox.type IS 'create, cancel or reschedule';
COMMENT ON COLUMN remediation.stuck_outbox.created_at IS 'when it was enqueued';
COMMENT ON COLUMN remediation.stuck_outbox.age IS 'how long it has waited';
COMMENT ON COLUMN remediation.stuck_outbox.status IS 'NULL: never claimed; running: leased; retry: waiting for next_attempt_at';
COMMENT ON COLUMN remediation.stuck_outbox.attempts IS 'attempts so far';
COMMENT ON COLUMN remediation.stuck_outbox.next_attempt_at IS 'when it is retried';
COMMENT ON COLUMN remediation.stuck_outbox.locked_by IS 'the worker holding it';
COMMENT ON COLUMN remediation.stuck_outbox.locked_until IS 'its lease';
COMMENT ON COLUMN remediation.stuck_outbox.last_category IS 'the last failure''s category';
COMMENT ON COLUMN remediation.stuck_outbox.last_error IS 'the last failure in full';
