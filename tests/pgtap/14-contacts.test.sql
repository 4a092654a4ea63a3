-- Valid contacts at booking time: Cal.com's e-mail rule in SQL, the stored e-mail kept (the placeholder only where
-- there is none at all), the salon's settings in the sync state, phone findings as facts, and who sees them.
SELECT plan(48);

SELECT tests.make_salon() AS s \gset
SELECT (:'s'::jsonb->>'company')::bigint AS company, (:'s'::jsonb->>'cut')::bigint AS cut,
       (:'s'::jsonb->>'lena')::uuid AS lena, (:'s'::jsonb->>'customer')::bigint AS hans \gset

-- the rule is Cal.com's (the full comparison with the simulator's rule is tests/test_contacts.py)
SELECT ok(calsync.is_usable_email('ada@example.com'), 'an ordinary address is accepted');
SELECT ok(NOT calsync.is_usable_email('frau.klein@web'), 'a domain without a top-level domain is refused');
SELECT ok(NOT calsync.is_usable_email('kunde@@mail.de'), 'two @ are refused');
SELECT ok(NOT calsync.is_usable_email(' ada@example.com'), 'nothing is trimmed');
SELECT ok(NOT calsync.is_usable_email('jürgen@example.de'), 'non-ASCII letters are refused (ASCII folding only)');
SELECT ok(calsync.is_usable_email('a,b@example.com'), 'a comma in the local part is accepted (the +-. range)');
SELECT ok(NOT calsync.is_usable_email(NULL), 'NULL is not usable');
SELECT is(calsync.is_usable_email(NULL), false, 'and the answer is false, never NULL');
SELECT is((SELECT provolatile::text || proparallel::text FROM pg_proc WHERE oid = 'calsync.is_usable_email(text)'::regprocedure),
          'is', 'is_usable_email is IMMUTABLE and PARALLEL SAFE');

-- the placeholder only where there is no e-mail at all; a refused e-mail is kept
SELECT tests.make_customer(:company, 'Frau Klein', 'frau.klein@web', NULL) AS klein \gset
SELECT is((SELECT email::text FROM customers WHERE id = :klein), 'frau.klein@web',
          'an e-mail Cal.com refuses is kept, even without a usable phone');
SELECT ok(NOT (SELECT email_is_placeholder FROM customers WHERE id = :klein), 'and it is not a placeholder');
SELECT tests.make_customer(:company, 'Anon', NULL, 'anonymous_1763495863_2d3eaf7e') AS anon \gset
SELECT is((SELECT email::text FROM customers WHERE id = :anon), calsync.placeholder_email(:anon),
          'no e-mail and an anonymous phone still get the placeholder (the incident''s rule)');
SELECT tests.make_customer(:company, 'Blank', '   ', NULL) AS blank \gset
SELECT is((SELECT email::text FROM customers WHERE id = :blank), calsync.placeholder_email(:blank),
          'so does a blank e-mail without a phone');
SELECT tests.make_customer(:company, 'Phone Only', '', '030 1234567') AS phone_only \gset
SELECT is((SELECT email::text FROM customers WHERE id = :phone_only), NULL,
          'a blank e-mail with a phone becomes NULL, as before');
UPDATE customers SET email = 'kunde@@mail.de' WHERE id = :anon;
SELECT is((SELECT email::text FROM customers WHERE id = :anon), 'kunde@@mail.de',
          'a refused e-mail given later replaces the placeholder and is kept');
SELECT ok(NOT (SELECT email_is_placeholder FROM customers WHERE id = :anon), 'and clears the flag');
UPDATE customers SET phone = NULL WHERE id = :klein;
SELECT is((SELECT email::text FROM customers WHERE id = :klein), 'frau.klein@web', 'touching the row keeps it too');
SELECT is(calsync.placeholder_email_backfill_batch(:klein - 1, 1), :klein::bigint, 'the backfill covers the row');
SELECT is((SELECT email::text FROM customers WHERE id = :klein), 'frau.klein@web', 'and leaves the refused e-mail as it is');

-- the salon's settings: named rules
SELECT throws_ok(format($$INSERT INTO calsync.company_settings (company_id, phone_region) VALUES (%s, 'de')$$, :company),
                 '23514', NULL, 'a phone region is ISO 3166 alpha-2 in upper case');
SELECT is(tests.error_of(format($$INSERT INTO calsync.company_settings (company_id, phone_region) VALUES (%s, 'DEU')$$, :company)),
          '23514 company_settings_phone_region_is_iso_3166_alpha2', 'the rule''s name says so');
SELECT is(tests.error_of(format($$INSERT INTO calsync.company_settings (company_id, language) VALUES (%s, 'deutsch')$$, :company)),
          '23514 company_settings_language_is_a_calcom_language_code', 'a language is a Cal.com language code');
SELECT throws_ok($$INSERT INTO calsync.company_settings (company_id, phone_region) VALUES (-1, 'DE')$$, '23503', NULL,
                 'settings belong to a company');
SELECT lives_ok(format($$INSERT INTO calsync.company_settings (company_id, language) VALUES (%s, 'pt-BR'),
                         (tests.make_company('Zweiter Salon'), 'es-419')$$, :company),
                'pt-BR and es-419 are language codes; NULL phone region means the default');

-- the sync state carries them, with Cal.com's verdict and the placeholder
SELECT tests.make_appointment(:klein, :cut, :'lena', now() + interval '3 days') AS a_klein \gset
SELECT tests.make_appointment(:hans, :cut, :'lena', now() + interval '4 days') AS a_hans \gset
SELECT results_eq(format($$SELECT (s.customer).email_accepted, (s.customer).usable_email, (s.customer).placeholder_email,
                                  s.phone_region, s.language FROM calsync.appointment_sync_state(ARRAY[%s, %s]) s ORDER BY s.id$$,
                         :a_klein, :a_hans),
                  format($$VALUES (false, false, %L, NULL::text, 'pt-BR'), (true, true, %L, NULL, 'pt-BR')$$,
                         calsync.placeholder_email(:klein), calsync.placeholder_email(:hans)),
                  'the state says whether Cal.com accepts the e-mail, what to send instead, and the salon''s settings');
UPDATE calsync.company_settings SET phone_region = 'AT', language = NULL WHERE company_id = :company;
SELECT results_eq(format($$SELECT phone_region, language FROM calsync.appointment_sync_state(ARRAY[%s]) s$$, :a_hans),
                  $$VALUES ('AT', NULL::text)$$, 'a NULL column is the default');
SELECT is((SELECT row(phone_region, language)::text FROM calsync.appointment_sync_state(ARRAY[424242])), '(,)',
          'a deleted appointment has no settings');

-- phone findings: recorded as facts, once, resolved when valid again or when the phone changes
SELECT tests.make_appointment(:phone_only, :cut, :'lena', now() + interval '5 days') AS a_phone \gset
SELECT isnt(calsync.record_contact_finding(:phone_only, 'phone', '030 1234567', 'not a valid phone number in AT'), NULL,
            'the worker''s finding is recorded');
SELECT is(calsync.record_contact_finding(:phone_only, 'phone', '030 1234567', 'not a valid phone number in AT'),
          (SELECT id FROM calsync.integrity_issues WHERE rule = 'customers_phone_valid_for_calcom' AND row_id = :phone_only),
          'again: the same open issue, no second one');
SELECT results_eq(format($$SELECT detail, found_by, table_name FROM calsync.integrity_issues
                           WHERE rule = 'customers_phone_valid_for_calcom' AND row_id = %s AND resolved_at IS NULL$$, :phone_only),
                  $$VALUES ('not a valid phone number in AT', 'worker', 'customers')$$, 'as an open integrity issue');
SELECT is(calsync.record_contact_finding(:phone_only, 'phone', '0171 000', 'too short'), NULL,
          'a value the customer no longer has is not recorded');
SELECT throws_ok(format($$SELECT calsync.record_contact_finding(%s, 'email', 'x', 'y')$$, :phone_only), '22023', NULL,
                 'e-mails are not reported: SQL checks them');
SELECT results_eq('SELECT customer_id, field, stored_value, reason, found_by FROM remediation.customers_with_invalid_contact ORDER BY customer_id, field',
                  format($$VALUES (%s::bigint, 'email', 'frau.klein@web', 'the domain does not end in a top-level domain of two or more letters', 'calsync.is_usable_email'),
                                  (%s, 'phone', '030 1234567', 'not a valid phone number in AT', 'worker')$$, :klein, :phone_only),
                  'the view lists the refused e-mail and the phone finding of customers with something to sync');
SELECT is((SELECT recommended_action FROM remediation.customers_with_invalid_contact WHERE field = 'email'),
          'correct the e-mail (it is kept; bookings use the placeholder meanwhile)', 'with what to do');
UPDATE appointments SET status = 'cancelled' WHERE id = :a_klein;
SELECT is_empty('SELECT 1 FROM remediation.customers_with_invalid_contact WHERE field = ''email''',
                'a customer with nothing left to sync is not listed (the anonymous caller''s refused e-mail neither)');
SELECT ok(calsync.resolve_contact_finding(:phone_only, 'phone'), 'the worker found the phone valid: resolved');
SELECT ok(NOT calsync.resolve_contact_finding(:phone_only, 'phone'), 'resolving again finds nothing open');
SELECT isnt(calsync.record_contact_finding(:phone_only, 'phone', '030 1234567', 'not a valid phone number in AT'), NULL,
            'found again later');
UPDATE customers SET phone = '+43 1 234567' WHERE id = :phone_only;
SELECT results_eq(format($$SELECT resolved_by, resolution FROM calsync.integrity_issues
                           WHERE rule = 'customers_phone_valid_for_calcom' AND row_id = %s ORDER BY id DESC LIMIT 1$$, :phone_only),
                  $$VALUES ('customers_resolve_changed_contact_findings', 'the phone changed: checked again at the next sync')$$,
                  'a changed phone resolves its finding (the new one is checked at the next sync)');
SELECT is_empty('SELECT 1 FROM remediation.customers_with_invalid_contact', 'and the view is empty again');
SELECT is((SELECT count(tests.make_appointment(tests.make_customer(:company, 'C' || i, e, NULL), :cut, :'lena',
                                                now() + (10 + i) * interval '1 day'))::int
           FROM unnest(ARRAY['neu@@mail.de', ' ada@example.com', 'jürgen@example.de', 'ada.example.com', 'a.@example.com',
                             'a b@example.com', repeat('a', 250) || '@x.de']) WITH ORDINALITY AS x(e, i)),
          7, 'customers whose e-mails Cal.com refuses book (each e-mail kept)');
SELECT results_eq('SELECT reason FROM remediation.customers_with_invalid_contact ORDER BY customer_id',
                  $$VALUES ('more than one @'), ('a space or line break before or after the address (Cal.com does not trim)'),
                           ('characters other than ASCII (Cal.com accepts ASCII addresses only)'), ('no @'),
                           ('not an address Cal.com accepts (its e-mail rule, calsync.is_usable_email)'),
                           ('a space or line break inside the address'), ('longer than 254 characters')$$,
                  'each refused e-mail with why, in words');

-- who may see and do what
SET ROLE calsync_worker;
SELECT lives_ok(format($$SELECT s.phone_region, (s.customer).placeholder_email FROM calsync.appointment_sync_state(ARRAY[%s]) s$$, :a_hans),
                'the worker reads the state with the salon''s settings and the placeholder');
SELECT throws_ok(format($$SELECT calsync.record_contact_finding(%s, 'phone', '+43 1 234567', 'x')$$, :phone_only), '42501', NULL,
                 'but records findings only through calsync.finish_sync_events');
SELECT throws_ok($$UPDATE calsync.company_settings SET language = 'en'$$, '42501', NULL, 'nor changes the settings');
RESET ROLE;
SET ROLE calsync_readonly;
SELECT lives_ok('SELECT customer_id, company_id, field, reason, found_by, found_at, appointments, next_starts_at, recommended_action FROM remediation.customers_with_invalid_contact',
                'readonly reads the findings');
SELECT throws_ok('SELECT stored_value FROM remediation.customers_with_invalid_contact', '42501', NULL,
                 'but not the stored value (a mistyped address is still the customer''s)');
RESET ROLE;
SET ROLE calsync_remediator;
SELECT lives_ok('SELECT * FROM remediation.customers_with_invalid_contact', 'the remediator reads them in full');
RESET ROLE;

SELECT * FROM finish();
