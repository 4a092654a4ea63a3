-- The worker found the customer's phone valid again (or no longer a finding): its open issue of rule
-- customers_phone_valid_for_calcom is resolved (never deleted). Returns true when one was open.
CREATE OR REPLACE FUNCTION calsync.resolve_contact_finding(p_customer_id bigint, p_field text,
                                                          p_now timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF p_field IS DISTINCT FROM 'phone' THEN
        RAISE EXCEPTION 'calsync.resolve_contact_finding: field % is not reported by the worker', quote_nullable(p_field)
            USING ERRCODE = '22023',
                  HINT = 'Only phone: e-mails are checked in SQL (calsync.is_usable_email).';
    END IF;
    UPDATE calsync.integrity_issues
    SET resolved_at = p_now, resolved_by = 'worker', resolution = 'the phone is valid for Cal.com now'
    WHERE rule = 'customers_phone_valid_for_calcom' AND table_name = 'customers' AND row_id = p_customer_id
      AND resolved_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION calsync.resolve_contact_finding(bigint, text, timestamptz) IS
    'Resolve the customer''s open phone finding (customers_phone_valid_for_calcom): the worker found the phone valid. True when one was open.';
