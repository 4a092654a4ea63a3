CREATE OR REPLACE VIEW remediation.integrity_issues AS
SELECT i.id, i.rule, i.table_name, i.row_id, i.detail, i.found_by, i.found_at
FROM calsync.integrity_issues i
WHERE i.resolved_at IS NULL;
COMMENT ON VIEW remediation.integrity_issues IS 'Open integrity issues: rows known to break a rule (listed by a pre-flight, a trigger or the runbook).';
COMMENT ON COLUMN remediation.integrity_issues.id IS 'the issue';
COMMENT ON COLUMN remediation.integrity_issues.rule IS 'the rule the row breaks';
COMMENT ON COLUMN remediation.integrity_issues.table_name IS 'the row''s table';
COMMENT ON COLUMN remediation.integrity_issues.row_id IS 'the row';
COMMENT ON COLUMN remediation.integrity_issues.detail IS 'what is wrong, in words';
COMMENT ON COLUMN remediation.integrity_issues.found_by IS 'what found it';
COMMENT ON COLUMN remediation.integrity_issues.found_at IS 'when';
