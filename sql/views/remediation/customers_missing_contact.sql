CREATE OR REPLACE VIEW remediation.customers_missing_contact AS
SELECT c.id AS customer_id, c.name, c.email, c.phone, c.source,
       (SELECT count(*) FROM appointments a WHERE a.customer_id = c.id AND a.status NOT IN ('cancelled', 'no_show')
          AND a.starts_at >= now())::int AS upcoming_appointments
FROM customers c
WHERE NOT calsync.is_usable_email(c.email) AND NOT calsync.is_usable_phone(c.phone) AND c.deleted_at IS NULL;
COMMENT ON VIEW remediation.customers_missing_contact IS
    'Customers with no usable e-mail and no usable phone (NULL, blank or anonymous_…): Cal.com refuses their bookings.';
COMMENT ON COLUMN remediation.customers_missing_contact.customer_id IS 'the customer';
COMMENT ON COLUMN remediation.customers_missing_contact.name IS 'the customer''s name';
COMMENT ON COLUMN remediation.customers_missing_contact.email IS 'the e-mail (NULL or blank)';
COMMENT ON COLUMN remediation.customers_missing_contact.phone IS 'the phone (NULL, blank or the voice agent''s anonymous_<ts>_<hash>)';
COMMENT ON COLUMN remediation.customers_missing_contact.source IS 'where the customer came from';
COMMENT ON COLUMN remediation.customers_missing_contact.upcoming_appointments IS 'their live appointments still to come';
