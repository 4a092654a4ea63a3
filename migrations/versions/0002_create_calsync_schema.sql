-- Frozen SQL of revision 0002 (never edit; sql/ holds the current definitions).

-- name: schema
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
        CREATE EXTENSION btree_gist;
        COMMENT ON EXTENSION btree_gist IS 'created by calsync revision 0002';
    END IF;
END
$$;
CREATE SCHEMA calsync;
COMMENT ON SCHEMA calsync IS 'calsync: integrity rules, outbox and sync bookkeeping for the appointment tables';

CREATE TABLE calsync.settings (
    key          text PRIMARY KEY,
    value        text NOT NULL,
    description  text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE calsync.settings IS 'Settings the calsync rules read; change a value with UPDATE.';

CREATE TABLE calsync.integrity_issues (
    id           bigserial PRIMARY KEY,
    rule         text NOT NULL,
    table_name   text NOT NULL,
    row_id       bigint NOT NULL,
    detail       text NOT NULL,
    found_by     text NOT NULL,
    found_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolved_by  text,
    resolution   text,
    CONSTRAINT integrity_issues_resolution_needs_time CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX integrity_issues_one_open_per_rule_and_row
    ON calsync.integrity_issues (rule, table_name, row_id) WHERE resolved_at IS NULL;
COMMENT ON TABLE calsync.integrity_issues IS
    'Rows known to break a rule: listed by a pre-flight (new-rows-only mode), by a rule that could not repair a row, or by remediation. Resolved, never deleted.';
COMMENT ON COLUMN calsync.integrity_issues.rule IS 'name of the rule (constraint, index or trigger) the row breaks';
COMMENT ON COLUMN calsync.integrity_issues.row_id IS 'id of the offending row in table_name';
COMMENT ON COLUMN calsync.integrity_issues.detail IS 'what is wrong with the row, in words';
COMMENT ON COLUMN calsync.integrity_issues.found_by IS 'what found it (a revision''s pre-flight, a trigger, a runbook step)';
COMMENT ON COLUMN calsync.integrity_issues.resolved_at IS 'when it was resolved; NULL while open';

-- name: functions
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

-- name: drop_btree_gist_if_ours
DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'btree_gist'), 'pg_extension')
       = 'created by calsync revision 0002' THEN
        DROP EXTENSION btree_gist;
    END IF;
END
$$;
