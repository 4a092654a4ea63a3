-- Rule: a customer with no usable e-mail and no usable phone gets customer_<id>@<domain> (repair at source).
SELECT plan(12);

SELECT tests.make_company() AS company \gset

INSERT INTO customers (company_id, name, email, phone) VALUES (:company, 'Anon Caller', NULL, 'anonymous_1763495863_2d3eaf7e')
RETURNING id AS anon \gset
SELECT is((SELECT email::text FROM customers WHERE id = :anon), 'customer_' || :anon || '@placeholder.invalid',
          'an anonymous_ phone and no e-mail get customer_<id>@placeholder.invalid');
SELECT ok((SELECT email_is_placeholder FROM customers WHERE id = :anon), 'the placeholder is flagged');

INSERT INTO customers (company_id, name, email, phone) VALUES (:company, 'Blank', '  ', NULL) RETURNING id AS blank \gset
SELECT is((SELECT email::text FROM customers WHERE id = :blank), 'customer_' || :blank || '@placeholder.invalid',
          'a blank e-mail and no phone also get a placeholder');

INSERT INTO customers (company_id, name, email, phone) VALUES (:company, 'Phone Only', '', '+4915199999999')
RETURNING id AS phone_only \gset
SELECT is((SELECT email::text FROM customers WHERE id = :phone_only), NULL,
          'a usable phone needs no placeholder, and a blank e-mail becomes NULL (blanks collided on the unique index)');
SELECT ok(NOT (SELECT email_is_placeholder FROM customers WHERE id = :phone_only), 'no placeholder, no flag');

INSERT INTO customers (company_id, name, email, phone) VALUES (:company, 'Real', 'real@mail.example', NULL)
RETURNING id AS real \gset
SELECT is((SELECT email::text FROM customers WHERE id = :real), 'real@mail.example', 'a real e-mail is kept');

UPDATE customers SET email = 'found@mail.example' WHERE id = :anon;
SELECT is((SELECT email::text FROM customers WHERE id = :anon), 'found@mail.example', 'a real e-mail given later replaces the placeholder');
SELECT ok(NOT (SELECT email_is_placeholder FROM customers WHERE id = :anon), 'and clears the flag');

UPDATE customers SET email = NULL WHERE id = :anon;
SELECT ok((SELECT email_is_placeholder FROM customers WHERE id = :anon),
          'removing the e-mail again (still no usable phone) brings the placeholder back');

UPDATE calsync.settings SET value = 'salon.invalid' WHERE key = 'placeholder_email_domain';
INSERT INTO customers (company_id, name, phone) VALUES (:company, 'Other Domain', NULL) RETURNING id AS other \gset
SELECT is((SELECT email::text FROM customers WHERE id = :other), 'customer_' || :other || '@salon.invalid',
          'the domain comes from calsync.settings');

-- the batched backfill repairs rows written while the trigger was off (as on a database at revision 0005)
ALTER TABLE customers DISABLE TRIGGER customers_fill_placeholder_email;
INSERT INTO customers (company_id, name, email, phone) VALUES (:company, 'Old Anon', NULL, 'anonymous_1762000000_abcdef12')
RETURNING id AS old \gset
ALTER TABLE customers ENABLE TRIGGER customers_fill_placeholder_email;
SELECT is(calsync.placeholder_email_backfill_batch(:old - 1, 10), :old::bigint, 'a backfill batch returns the last id it covered');
SELECT is((SELECT email::text FROM customers WHERE id = :old), 'customer_' || :old || '@salon.invalid',
          'the backfill filled the old row through the same trigger');

SELECT * FROM finish();
