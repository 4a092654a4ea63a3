-- The remediation views on a database that has not taken the rules (revision 0005), with one case each.
SELECT plan(29);

SELECT is_empty($$SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'remediation' AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL$$,
                'every remediation view has a comment');
SELECT is_empty($$SELECT c.relname || '.' || a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  WHERE n.nspname = 'remediation' AND c.relkind = 'v' AND col_description(c.oid, a.attnum) IS NULL$$,
                'every column of every remediation view has a comment');
SELECT set_eq($$SELECT viewname::text FROM pg_views WHERE schemaname = 'remediation'$$,
              ARRAY['sync_health', 'error_distribution', 'failed_syncs', 'duplicate_bookings', 'past_unsynced',
                    'host_conflicts', 'composites_without_phases', 'customers_missing_contact',
                    'appointments_without_service', 'stuck_outbox', 'dead_letters', 'integrity_issues',
                    'broken_phases', 'host_overlaps', 'shared_bookings', 'sync_diagnosis', 'unsettled_appointments'],
              'the views the DBAs were promised, and the five building blocks they are made of');

SELECT tests.make_salon() AS s \gset
SELECT (:'s'::jsonb->>'company')::bigint AS company, (:'s'::jsonb->>'customer')::bigint AS hans,
       (:'s'::jsonb->>'cut')::bigint AS cut, (:'s'::jsonb->>'perm')::bigint AS perm,
       (:'s'::jsonb->>'lena')::uuid AS lena \gset
SELECT tests.make_staff(:company, 'Fabian Spitzer', 1414768) AS fabian_a \gset
SELECT tests.make_staff(:company, 'Fabian Spitzer', 1414768) AS fabian_b \gset
SELECT tests.make_customer(:company, 'Anon', NULL, 'anonymous_1763495863_2d3eaf7e') AS anon \gset

-- duplicates: three live appointments of one customer, start and service (#753-#755)
SELECT tests.make_appointment(:hans, :cut, NULL, now() + interval '10 days') AS d1 \gset
SELECT tests.make_appointment(:hans, :cut, NULL, now() + interval '10 days') AS d2 \gset
SELECT tests.make_appointment(:hans, :cut, NULL, now() + interval '10 days') AS d3 \gset
UPDATE appointments SET calcom_booking_id = 13060966 WHERE id IN (:d1, :d2, :d3);
SELECT set_eq('SELECT appointment_id FROM remediation.duplicate_bookings', format('VALUES (%s::bigint), (%s), (%s)', :d1, :d2, :d3),
              'duplicate_bookings lists every live appointment of the shared slot');
SELECT is((SELECT duplicates_of FROM remediation.duplicate_bookings WHERE appointment_id = :d1), ARRAY[:d2, :d3]::bigint[],
          'and names the others');

-- a past appointment that never synced
SELECT tests.make_appointment(:hans, :cut, :'lena', now() - interval '5 days') AS past \gset
UPDATE appointments SET calcom_sync_status = 'failed', requires_manual_review = true,
       sync_error_message = 'Cal.com API error: Attempting to book a meeting in the past.' WHERE id = :past;
SELECT results_eq('SELECT appointment_id FROM remediation.past_unsynced', format('VALUES (%s::bigint)', :past),
                  'past_unsynced lists the past appointment that never reached Cal.com');

-- one person on two staff rows, booked twice at once (#750/#751)
SELECT tests.make_appointment(tests.make_customer(:company, 'A'), :cut, :'fabian_a', now() + interval '12 days') AS h1 \gset
SELECT tests.make_appointment(tests.make_customer(:company, 'B'), :cut, :'fabian_b', now() + interval '12 days' + interval '10 minutes') AS h2 \gset
SELECT set_eq('SELECT appointment_id, conflicts_with FROM remediation.host_conflicts',
              format('VALUES (%s::bigint, %s::bigint), (%s, %s)', :h1, :h2, :h2, :h1),
              'host_conflicts pairs the two bookings of one Cal.com user');
SELECT is((SELECT count(*)::int FROM remediation.host_conflicts), 2,
          'while both are pending; once one is at Cal.com only the other is listed');
UPDATE appointments SET calcom_sync_status = 'synced' WHERE id = :h1;
SELECT results_eq('SELECT appointment_id, conflicts_with FROM remediation.host_conflicts',
                  format('VALUES (%s::bigint, %s::bigint)', :h2, :h1), 'the one still to sync is listed, naming the other');
SELECT results_eq(format('SELECT blocking_cause, category FROM remediation.sync_diagnosis WHERE appointment_id = %s', :h2),
                  $$VALUES ('DOUBLE_BOOKING', 'DOUBLE_BOOKING')$$, 'sync_diagnosis answers for one appointment');
UPDATE appointments SET calcom_sync_status = 'pending' WHERE id = :h1;

-- a composite appointment saved without phases
SELECT tests.make_appointment(:hans, :perm, :'lena', now() + interval '14 days') AS comp \gset
SELECT results_eq('SELECT appointment_id, segments_problem FROM remediation.composites_without_phases',
                  format('VALUES (%s::bigint, NULL::text)', :comp), 'composites_without_phases lists it (segments usable)');

SELECT results_eq('SELECT customer_id FROM remediation.customers_missing_contact', format('VALUES (%s::bigint)', :anon),
                  'customers_missing_contact: no e-mail and an anonymous_ phone');

-- an appointment without a service (#15)
INSERT INTO appointments (company_id, customer_id, starts_at, ends_at, status, calcom_sync_status, requires_manual_review,
                          sync_error_message, sync_error_code)
VALUES (:company, :hans, now() + interval '3 days', now() + interval '3 days 30 minutes', 'confirmed', 'failed', true,
        'Cal.com API error: {"status":"error","timestamp":"2025-11-22T15:04:11.214Z","path":"/v2/bookin', 'HTTP_400')
RETURNING id AS noservice \gset
SELECT results_eq('SELECT appointment_id FROM remediation.appointments_without_service', format('VALUES (%s::bigint)', :noservice),
                  'appointments_without_service lists it');

-- the outbox: an old undelivered event, a dead one
SELECT tests.make_appointment(tests.make_customer(:company, 'C'), :cut, :'lena', now() + interval '20 days') AS q \gset
UPDATE calsync.outbox SET created_at = now() - interval '1 hour' WHERE aggregateid = :'q';
SELECT results_eq('SELECT appointment_id, status FROM remediation.stuck_outbox',
                  format('VALUES (%s::bigint, NULL::text)', :q), 'stuck_outbox: undelivered for more than 5 minutes');
INSERT INTO calsync.outbox_delivery (outbox_id, aggregateid, status, attempts, covers_seq, last_category, last_error, processed_at)
SELECT id, aggregateid, 'dead', 8, seq, 'VALIDATION', 'HTTP 400: responses - {email}email_validation_error, ', now()
FROM calsync.outbox WHERE aggregateid = :'q';
SELECT results_eq('SELECT appointment_id, last_category FROM remediation.dead_letters',
                  format('VALUES (%s::bigint, %L::text)', :q, 'VALIDATION'), 'dead_letters: given up, with the category');
SELECT is_empty('SELECT 1 FROM remediation.stuck_outbox', 'a dead event is not stuck, it is dead');
INSERT INTO calsync.integrity_issues (rule, table_name, row_id, detail, found_by)
VALUES ('appointments_service_required', 'appointments', :noservice, 'no service', 'test');
SELECT results_eq('SELECT rule, row_id FROM remediation.integrity_issues',
                  format('VALUES (%L::text, %s::bigint)', 'appointments_service_required', :noservice), 'integrity_issues: the open ones');

-- failing syncs and their categories
UPDATE appointments SET calcom_sync_status = 'failed', requires_manual_review = true, sync_error_code = 'HTTP_400',
       sync_error_message = 'Cal.com API error: {"status":"error","timestamp":"2025-11-22T15:04:11.214Z","path":"/v2/bookin'
WHERE id IN (:d1, :d2, :d3, :h2, :comp);
SELECT tests.make_appointment(:anon, :cut, :'lena', now() + interval '25 days') AS nocontact \gset
UPDATE appointments SET calcom_sync_status = 'failed', sync_error_message = 'Cal.com API error: attendee email or phone property is wrong'
WHERE id = :nocontact;
UPDATE appointments SET calcom_sync_status = 'failed', sync_error_code = 'VALIDATION', sync_error_message = 'HTTP 400: ...'
WHERE id = :q;
SELECT set_eq('SELECT appointment_id, category FROM remediation.failed_syncs',
              format($$VALUES (%s::bigint, 'DOUBLE_BOOKING'::text), (%s, 'DOUBLE_BOOKING'), (%s, 'DOUBLE_BOOKING'),
                              (%s, 'DOUBLE_BOOKING'), (%s, 'COMPOSITE_FAILURE'), (%s, 'MISSING_CONTACT'),
                              (%s, 'VALIDATION'), (%s, 'PAST_APPOINTMENT'), (%s, 'OTHER')$$,
                     :d1, :d2, :d3, :h2, :comp, :nocontact, :q, :past, :noservice),
              'failed_syncs: the worker''s verdict first, then the data (composite, double booking, contact), then the message');
SELECT is((SELECT runbook_step FROM remediation.failed_syncs WHERE appointment_id = :nocontact), 'placeholder_emails',
          'each failure names the runbook step that fixes it');
UPDATE customers SET email = 'anon@mail.example' WHERE id = :anon;
SELECT results_eq(format('SELECT f.category, remediation.blocking_cause(%s) FROM remediation.failed_syncs f WHERE f.appointment_id = %s', :nocontact, :nocontact),
                  $$VALUES ('MISSING_CONTACT'::text, NULL::text)$$,
                  'a failure keeps the category it was diagnosed with when it happened; the live cause is gone');
SELECT is((SELECT category FROM remediation.failure_diagnoses WHERE appointment_id = :nocontact), 'MISSING_CONTACT',
          'the app''s failure was diagnosed when it was recorded');
UPDATE customers SET email = NULL WHERE id = :anon;
SELECT matches((SELECT last_error FROM remediation.failed_syncs WHERE appointment_id = :q), 'email_validation_error',
               'the full last error, from the dead event');
SELECT set_eq($$SELECT category, failures, share_percent FROM remediation.error_distribution WHERE failures > 0$$,
              $$VALUES ('DOUBLE_BOOKING'::text, 4, 44.4), ('COMPOSITE_FAILURE', 1, 11.1), ('MISSING_CONTACT', 1, 11.1),
                       ('PAST_APPOINTMENT', 1, 11.1), ('VALIDATION', 1, 11.1), ('OTHER', 1, 11.1)$$,
              'error_distribution: count and share per category');
SELECT is((SELECT category FROM remediation.error_distribution LIMIT 1), 'DOUBLE_BOOKING', 'largest category first');
SELECT is((SELECT count(*)::int FROM remediation.error_distribution), (SELECT count(*)::int FROM remediation.categories),
          'every category is listed, with zero where nothing fails');

-- the dashboard
SELECT results_eq('SELECT health, failed, dead_events, critical_alerts FROM remediation.sync_health',
                  $$VALUES ('DEGRADED'::text, 9, 1, 0)$$, 'DEGRADED below the critical threshold of 10 failures');
UPDATE calsync.settings SET value = '5' WHERE key = 'health_failed_critical';
SELECT results_eq('SELECT health, critical_alerts FROM remediation.sync_health', $$VALUES ('CRITICAL'::text, 1)$$,
                  'CRITICAL at the threshold (calsync.settings health_failed_critical)');
SELECT ok((SELECT alerts @> '[{"severity": "critical", "alert": "failed_syncs"}]'::jsonb FROM remediation.sync_health),
          'with the alert and its severity');
UPDATE appointments SET calcom_sync_status = 'synced', requires_manual_review = false, sync_error_code = NULL;
UPDATE calsync.outbox_delivery SET status = 'retry';
DELETE FROM calsync.outbox;
SELECT is((SELECT health FROM remediation.sync_health), 'HEALTHY', 'HEALTHY when nothing fails');

SELECT * FROM finish();
