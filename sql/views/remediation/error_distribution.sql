CREATE OR REPLACE VIEW remediation.error_distribution AS
SELECT k.category,
       k.origin,
       count(f.appointment_id)::int AS failures,
       round(100.0 * count(f.appointment_id) / nullif(sum(count(f.appointment_id)) OVER (), 0), 1) AS share_percent,
       k.recommended_action
FROM remediation.categories k
LEFT JOIN remediation.failed_syncs f ON f.category = k.category
GROUP BY k.category, k.origin, k.recommended_action, k.sort_order
ORDER BY count(f.appointment_id) DESC, k.sort_order;
COMMENT ON VIEW remediation.error_distribution IS 'Failing syncs per category, every category listed (the incident''s and the worker''s).';
COMMENT ON COLUMN remediation.error_distribution.category IS 'the category';
COMMENT ON COLUMN remediation.error_distribution.origin IS 'incident: found from the data; worker: the worker''s verdict';
COMMENT ON COLUMN remediation.error_distribution.failures IS 'failing appointments in this category';
COMMENT ON COLUMN remediation.error_distribution.share_percent IS 'share of all failing appointments, in percent';
COMMENT ON COLUMN remediation.error_distribution.recommended_action IS 'what to do about this category';
