-- A contact value Cal.com would refuse, reported as a fact by the worker (through calsync.finish_sync_events, which
-- runs as the owner): phones are checked with libphonenumber in the worker, which SQL cannot do. Upserts the one
-- open calsync.integrity_issues row of rule customers_phone_valid_for_calcom for the customer (detail = p_reason,
-- found_by 'worker'); remediation.customers_with_invalid_contact lists it. Recorded only while the customer still
-- has p_value (a phone changed since the worker read it is checked again at its next sync); a later change of the
-- phone resolves it (trigger customers_resolve_changed_contact_findings), and so does calsync.resolve_contact_finding.
-- p_reason is shown to calsync_readonly (remediation.integrity_issues): it must not repeat the value.
-- Returns the open issue's id, or NULL when nothing was recorded (no such customer, or another value now).
CREATE OR REPLACE FUNCTION calsync.record_contact_finding(p_customer_id bigint, p_field text, p_value text,
                                                         p_reason text, p_now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_field IS DISTINCT FROM 'phone' THEN
        RAISE EXCEPTION 'calsync.record_contact_finding: field % is not reported by the worker', quote_nullable(p_field)
            USING ERRCODE = '22023',
                  HINT = 'Only phone: e-mails are checked in SQL (calsync.is_usable_email).';
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' THEN
        RAISE EXCEPTION 'calsync.record_contact_finding: a finding needs its reason' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = p_customer_id AND c.phone IS NOT DISTINCT FROM p_value) THEN
        RETURN NULL;
    END IF;
    INSERT INTO calsync.integrity_issues AS i (rule, table_name, row_id, detail, found_by, found_at)
    VALUES ('customers_phone_valid_for_calcom', 'customers', p_customer_id, left(p_reason, 500), 'worker', p_now)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL
    DO UPDATE SET detail = excluded.detail, found_at = excluded.found_at
        WHERE i.detail IS DISTINCT FROM excluded.detail  -- the same finding again writes nothing
    RETURNING i.id INTO v_id;
    IF v_id IS NULL THEN
        SELECT i.id INTO v_id FROM calsync.integrity_issues i
        WHERE i.rule = 'customers_phone_valid_for_calcom' AND i.table_name = 'customers' AND i.row_id = p_customer_id
          AND i.resolved_at IS NULL;
    END IF;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.record_contact_finding(bigint, text, text, text, timestamptz) IS
    'Record that Cal.com would refuse the customer''s phone (p_field ''phone'', p_value as stored, p_reason in words without the value): one open integrity issue customers_phone_valid_for_calcom.';
