-- Contacts Cal.com would refuse, of customers who still have something to sync: a live appointment that is not
-- synced yet or is still to come. E-mails are checked here (calsync.is_usable_email: present but refused); phones
-- are checked by the worker with libphonenumber and recorded as facts (calsync.record_contact_finding). Nothing is
-- overwritten: the stored value stays until someone corrects it; meanwhile bookings carry the placeholder e-mail
-- instead of a refused one and no phone instead of a refused one.
CREATE OR REPLACE VIEW remediation.customers_with_invalid_contact AS
WITH findings AS (
    SELECT c.id AS customer_id, c.company_id, 'email'::text AS field, c.email::text AS stored_value,
           -- why, in words: the first reason that applies, the last one being the rule itself (the reasons are
           -- spelled out here, not in a calsync function, so that readonly needs no access to schema calsync)
           CASE WHEN length(c.email) > 254 THEN 'longer than 254 characters'
                WHEN c.email ~ '^\s|\s$' THEN 'a space or line break before or after the address (Cal.com does not trim)'
                WHEN c.email ~ '\s' THEN 'a space or line break inside the address'
                WHEN strpos(c.email, '@') = 0 THEN 'no @'
                WHEN c.email ~ '@.*@' THEN 'more than one @'
                WHEN c.email ~ '[^ -~]' THEN 'characters other than ASCII (Cal.com accepts ASCII addresses only)'
                WHEN c.email !~ '@.*\.[A-Za-z]{2,}$' THEN 'the domain does not end in a top-level domain of two or more letters'
                ELSE 'not an address Cal.com accepts (its e-mail rule, calsync.is_usable_email)' END AS reason,
           'calsync.is_usable_email'::text AS found_by,
           NULL::timestamptz AS found_at,
           'correct the e-mail (it is kept; bookings use the placeholder meanwhile)'::text AS recommended_action
    FROM customers c
    WHERE c.deleted_at IS NULL AND calsync.has_email(c.email) AND NOT calsync.is_usable_email(c.email)
    UNION ALL
    SELECT c.id, c.company_id, 'phone', c.phone::text, i.detail, i.found_by, i.found_at,
           'correct the phone: an international number (+49 …) or one valid in the salon''s region '
           || '(calsync.company_settings.phone_region); bookings are sent without it meanwhile'
    FROM calsync.integrity_issues i
    JOIN customers c ON c.id = i.row_id
    WHERE i.rule = 'customers_phone_valid_for_calcom' AND i.table_name = 'customers' AND i.resolved_at IS NULL
      AND c.deleted_at IS NULL
)
SELECT f.customer_id, f.company_id, f.field, f.stored_value, f.reason, f.found_by, f.found_at, a.appointments,
       a.next_starts_at, f.recommended_action
FROM findings f
CROSS JOIN LATERAL (
    SELECT count(*)::int AS appointments, min(x.starts_at) FILTER (WHERE x.starts_at >= now()) AS next_starts_at
    FROM appointments x
    WHERE x.customer_id = f.customer_id AND x.status NOT IN ('cancelled', 'no_show')
      AND (x.calcom_sync_status <> 'synced' OR x.starts_at >= now())
) AS a
WHERE a.appointments > 0;
COMMENT ON VIEW remediation.customers_with_invalid_contact IS
    'One row per customer and contact field that Cal.com would refuse (an e-mail present but not accepted, a phone the worker found invalid), for customers with a live appointment not synced yet or still to come. The stored value is kept: correct it.';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.customer_id IS 'the customer';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.company_id IS 'the customer''s company (salon)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.field IS 'which contact: email or phone';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.stored_value IS 'the value as stored (kept as it is; never sent to Cal.com)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.reason IS 'why Cal.com refuses it, in words';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.found_by IS 'calsync.is_usable_email (checked now, in SQL) or worker (a phone checked with libphonenumber at a sync)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.found_at IS 'when the worker found it (NULL for e-mails: checked as you read)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.appointments IS 'the customer''s live appointments not synced yet or still to come';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.next_starts_at IS 'the first of them still to come (NULL: only past ones are unsynced)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.recommended_action IS 'what to do, in words';
