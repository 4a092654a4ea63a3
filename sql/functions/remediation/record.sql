-- The runbook: every fix the incident applied by hand, as an audited SQL function. Each step
--  - finds only rows that still need it, so a second run changes nothing (idempotent);
--  - locks each row, re-checks it and changes it in one short statement, so it is safe next to the app
--    and the worker;
--  - with p_dry_run (the default) only returns what it would change;
--  - records before and after images in remediation.log with the run id, operator and reason;
--  - never deletes a row; remediation.undo(run_id) reverts a run.
-- Steps return SETOF remediation.change; p_limit bounds one call (the CLI calls again until done).
-- SECURITY DEFINER: calsync_remediator needs EXECUTE only.

CREATE OR REPLACE FUNCTION remediation.record(p_run_id uuid, p_step text, p_reason text, p_table text, p_row_id bigint,
                                              p_action text, p_before jsonb, p_after jsonb)
RETURNS remediation.change
LANGUAGE sql AS $$
    INSERT INTO remediation.log (run_id, step, operator, reason, table_name, row_id, action, before, after)
    VALUES (p_run_id, p_step, remediation.operator(), p_reason, p_table, p_row_id, p_action, p_before, p_after)
    RETURNING step, table_name, row_id, action, before, after
$$;
COMMENT ON FUNCTION remediation.record(uuid, text, text, text, bigint, text, jsonb, jsonb) IS
    'Write one change of a runbook step to remediation.log and return it.';
