CREATE OR REPLACE VIEW remediation.dead_letters AS
SELECT d.outbox_id, d.aggregateid::bigint AS appointment_id, o.type, d.attempts, d.last_category, d.last_error,
       o.created_at, d.processed_at AS died_at, k.recommended_action
FROM calsync.outbox_delivery d
JOIN calsync.outbox o ON o.id = d.outbox_id
LEFT JOIN remediation.categories k ON k.category = d.last_category
WHERE d.status = 'dead';
COMMENT ON VIEW remediation.dead_letters IS 'Outbox events given up on (a terminal error, or out of attempts); their appointments are flagged for review.';
COMMENT ON COLUMN remediation.dead_letters.outbox_id IS 'the event';
COMMENT ON COLUMN remediation.dead_letters.appointment_id IS 'its appointment';
COMMENT ON COLUMN remediation.dead_letters.type IS 'create, cancel or reschedule';
COMMENT ON COLUMN remediation.dead_letters.attempts IS 'attempts made';
COMMENT ON COLUMN remediation.dead_letters.last_category IS 'the category of the last failure';
COMMENT ON COLUMN remediation.dead_letters.last_error IS 'the last failure in full';
COMMENT ON COLUMN remediation.dead_letters.created_at IS 'when it was enqueued';
COMMENT ON COLUMN remediation.dead_letters.died_at IS 'when it was given up on';
COMMENT ON COLUMN remediation.dead_letters.recommended_action IS 'what to do, in words';
