-- calsync.preflight: before a revision adds a rule, find the rows that already break it.
-- p_violators is a query returning (id bigint, detail text), one row per offending row.
-- Mode 'refuse': stop with SQLSTATE CS001 and a readable report (count, first ids, rule, how to fix).
-- Mode 'new-rows-only': record the rows in calsync.integrity_issues and go on; the rule then covers new rows.
CREATE OR REPLACE FUNCTION calsync.preflight(
    p_revision text, p_rule text, p_table text, p_description text, p_violators text, p_fix text,
    p_mode text DEFAULT 'refuse'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_first text;
BEGIN
    EXECUTE format(
        'SELECT count(*), string_agg(id::text, '', '' ORDER BY id) FILTER (WHERE rn <= 10)
           FROM (SELECT v.id, row_number() OVER (ORDER BY v.id) AS rn FROM (%s) AS v) AS s', p_violators)
        INTO v_count, v_first;
    IF v_count = 0 THEN
        RETURN 0;
    END IF;
    IF p_mode = 'new-rows-only' THEN
        EXECUTE format(
            'INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
             SELECT %L, %L, v.id, v.detail, %L FROM (%s) AS v
             ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL DO NOTHING',
            p_rule, p_table, 'pre-flight of revision ' || p_revision, p_violators);
        RAISE WARNING 'calsync pre-flight, revision %: % row(s) of % break rule % (%); the rule now covers new rows only and these rows are listed in calsync.integrity_issues (first ids: %)',
            p_revision, v_count, p_table, p_rule, p_description, v_first;
        RETURN v_count;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'CS001',
        MESSAGE = format('calsync pre-flight stopped revision %s: %s row(s) of %s break rule %s (%s)',
                         p_revision, v_count, p_table, p_rule, p_description),
        DETAIL = format('first ids: %s', v_first),
        HINT = p_fix || E'\nOr add the rule for new rows only, listing these rows in calsync.integrity_issues: '
               'rerun with CALSYNC_PREFLIGHT=new-rows-only.';
END
$$;
COMMENT ON FUNCTION calsync.preflight(text, text, text, text, text, text, text) IS
    'Before a revision adds a rule: refuse (SQLSTATE CS001) with a report of the rows that break it, or in new-rows-only mode list them in calsync.integrity_issues.';
