-- Part of the runbook: the rules every step keeps are at the head of sql/functions/remediation/record.sql.

-- Fix 1: customers without any usable contact get customer_<id>@<domain> (flagged as a placeholder).
CREATE OR REPLACE FUNCTION remediation.backfill_placeholder_emails(
    p_dry_run boolean DEFAULT true, p_reason text DEFAULT NULL, p_run_id uuid DEFAULT gen_random_uuid(),
    p_limit integer DEFAULT NULL) RETURNS SETOF remediation.change
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_before jsonb;
BEGIN
    FOR v_id IN SELECT c.id FROM customers c
                WHERE NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone)
                  AND c.deleted_at IS NULL ORDER BY c.id LIMIT p_limit
    LOOP
        SELECT jsonb_build_object('email', c.email, 'email_is_placeholder', c.email_is_placeholder) INTO v_before
        FROM customers c WHERE c.id = v_id AND NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone)
        FOR UPDATE;
        CONTINUE WHEN v_before IS NULL;  -- fixed meanwhile
        IF p_dry_run THEN
            RETURN NEXT ('placeholder_emails', 'customers', v_id, 'update', v_before,
                         jsonb_build_object('email', calsync.placeholder_email(v_id), 'email_is_placeholder', true))::remediation.change;
            CONTINUE;
        END IF;
        UPDATE customers SET email = calsync.placeholder_email(id), email_is_placeholder = true, updated_at = now()
        WHERE id = v_id;
        RETURN NEXT remediation.record(p_run_id, 'placeholder_emails', p_reason, 'customers', v_id, 'update', v_before,
            (SELECT jsonb_build_object('email', email, 'email_is_placeholder', email_is_placeholder) FROM customers WHERE id = v_id));
    END LOOP;
END
$$;
COMMENT ON FUNCTION remediation.backfill_placeholder_emails(boolean, text, uuid, integer) IS
    'Runbook step placeholder_emails (incident fix 1): customers with no usable e-mail or phone get customer_<id>@<domain>.';
