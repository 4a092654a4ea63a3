-- The runbook on a database that has not taken the rules: each step fixes its rows, a dry run changes
-- nothing, a second run changes nothing, every change is logged, and undo restores exactly.
SELECT plan(28);

SELECT tests.make_salon() AS s \gset
SELECT (:'s'::jsonb->>'company')::bigint AS company, (:'s'::jsonb->>'customer')::bigint AS hans,
       (:'s'::jsonb->>'cut')::bigint AS cut, (:'s'::jsonb->>'perm')::bigint AS perm,
       (:'s'::jsonb->>'lena')::uuid AS lena \gset
SELECT tests.make_staff(:company, 'Fabian Spitzer', 1414768) AS fabian_a \gset
SELECT tests.make_staff(:company, 'Fabian Spitzer', 1414768) AS fabian_b \gset
SELECT tests.make_customer(:company, 'Anon', NULL, 'anonymous_1763495863_2d3eaf7e') AS anon \gset
SELECT tests.make_appointment(:anon, :cut, :'lena', now() + interval '8 days') AS a_anon \gset
SELECT tests.make_appointment(:hans, :perm, :'lena', now() + interval '9 days') AS a_comp \gset
SELECT tests.make_appointment(:hans, :cut, NULL, now() + interval '10 days') AS d1 \gset
SELECT tests.make_appointment(:hans, :cut, NULL, now() + interval '10 days') AS d2 \gset
UPDATE appointments SET calcom_booking_id = 13060966, calcom_v2_booking_uid = 'uid-1' WHERE id = :d1;
UPDATE appointments SET calcom_booking_id = 13060966 WHERE id = :d2;
INSERT INTO appointments (company_id, customer_id, starts_at, ends_at, status)
VALUES (:company, :hans, now() + interval '3 days', now() + interval '3 days 30 minutes', 'confirmed') RETURNING id AS noservice \gset
SELECT tests.make_appointment(:hans, :cut, :'lena', now() - interval '5 days') AS past \gset
SELECT tests.make_appointment(tests.make_customer(:company, 'A'), :cut, :'fabian_a', now() + interval '12 days') AS h1 \gset
SELECT tests.make_appointment(tests.make_customer(:company, 'B'), :cut, :'fabian_b', now() + interval '12 days') AS h2 \gset
UPDATE appointments SET calcom_sync_status = 'failed', requires_manual_review = true, sync_error_code = 'HTTP_400',
                        sync_error_message = 'Cal.com API error: {"status":"error"' WHERE id IN (:a_anon, :a_comp, :d1, :d2, :past, :noservice);
SELECT tests.runbook_fingerprint() AS before \gset
SET calsync.operator = 'pat';

-- dry runs report and change nothing
SELECT is((SELECT count(*)::int FROM remediation.backfill_placeholder_emails()), 1, 'dry run (the default): one customer would get a placeholder');
SELECT is((SELECT count(*)::int FROM remediation.resolve_duplicate_bookings()), 2, 'dry run: keep one, cancel one');
SELECT is(tests.runbook_fingerprint(), :'before', 'a dry run changes nothing');
SELECT is((SELECT count(*)::int FROM remediation.log), 0, 'and logs nothing');

-- the run
SELECT gen_random_uuid() AS run \gset
SELECT results_eq(format($$SELECT row_id, after->>'email' FROM remediation.backfill_placeholder_emails(false, 'incident', %L)$$, :'run'),
                  format($$VALUES (%s::bigint, 'customer_%s@placeholder.invalid')$$, :anon, :anon),
                  'placeholder_emails: customer_<id>@placeholder.invalid');
SELECT ok((SELECT email_is_placeholder FROM customers WHERE id = :anon), 'flagged as a placeholder');
SELECT ok((SELECT count(*) FROM remediation.create_missing_phases(false, 'incident', :'run')) = 6,
          'missing_phases: the Dauerwelle''s 6 phases (and nothing else)');
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :a_comp), 6, 'derived from the segments');
SELECT lives_ok(format($$SELECT * FROM remediation.resolve_duplicate_bookings(false, 'incident', %L)$$, :'run'), 'duplicates');
SELECT results_eq(format('SELECT status::text, calcom_sync_status::text, calcom_booking_id FROM appointments WHERE id IN (%s, %s) ORDER BY id', :d1, :d2),
                  $$VALUES ('confirmed', 'synced', 13060966::bigint), ('cancelled', 'synced', NULL)$$,
                  'the booked one is kept and synced; the duplicate is cancelled and lets go of the shared booking');
SELECT matches((SELECT sync_error_message FROM appointments WHERE id = :d2), format('Duplicate of #%s', :d1), 'with the reason');
SELECT lives_ok(format($$SELECT * FROM remediation.cancel_invalid_appointments(false, 'incident', %L)$$, :'run'), 'invalid');
SELECT is((SELECT status::text FROM appointments WHERE id = :noservice), 'cancelled', 'the appointment without a service is cancelled');
SELECT lives_ok(format($$SELECT * FROM remediation.resolve_past_unsynced(false, 'incident', %L)$$, :'run'), 'past');
SELECT results_eq(format('SELECT status::text, calcom_sync_status::text, requires_manual_review FROM appointments WHERE id = %s', :past),
                  $$VALUES ('confirmed', 'orphaned_local', false)$$, 'the past appointment is kept as history');
SELECT lives_ok(format($$SELECT * FROM remediation.flag_host_conflicts(false, 'incident', %L)$$, :'run'), 'host conflicts');
SELECT matches((SELECT sync_error_message FROM appointments WHERE id = :h1), format('also booked .* by appointment #%s', :h2),
               'both bookings of the double-booked host are flagged, naming the other');
SELECT set_eq(format($$SELECT row_id FROM remediation.requeue_failures(false, 'incident', %L) WHERE table_name = 'appointments'$$, :'run'),
              format('VALUES (%s::bigint), (%s)', :a_anon, :a_comp), 'requeue: the fixed failures, not the host conflict');
SELECT is((SELECT count(*)::int FROM calsync.outbox WHERE payload ? 'requeued_by_run'), 2, 'each gets an outbox event');
SELECT results_eq(format('SELECT DISTINCT operator, reason FROM remediation.log WHERE run_id = %L', :'run'),
                  $$VALUES ('pat'::text, 'incident'::text)$$, 'every change is logged with the run, operator and reason');
SELECT ok((SELECT bool_and(before IS NOT NULL OR action = 'insert') FROM remediation.log WHERE run_id = :'run'),
          'with its before image');

-- idempotent: a second run finds nothing to do
SELECT tests.runbook_fingerprint() AS after_run \gset
SELECT is((SELECT count(*)::int FROM (
             SELECT * FROM remediation.backfill_placeholder_emails(false) UNION ALL
             SELECT * FROM remediation.create_missing_phases(false) UNION ALL
             SELECT * FROM remediation.resolve_duplicate_bookings(false) UNION ALL
             SELECT * FROM remediation.cancel_invalid_appointments(false) UNION ALL
             SELECT * FROM remediation.resolve_past_unsynced(false) UNION ALL
             SELECT * FROM remediation.flag_host_conflicts(false) UNION ALL
             SELECT * FROM remediation.requeue_failures(false)) AS again), 0,
          'a second run changes nothing');
SELECT is(tests.runbook_fingerprint(), :'after_run', 'indeed');

-- undo restores exactly
SELECT ok((SELECT count(*) > 0 FROM remediation.undo(:'run', 'test')), 'undo');
SELECT is(tests.runbook_fingerprint(), :'before', 'undo restores the state before the run exactly');
SELECT is((SELECT count(*)::int FROM remediation.log WHERE run_id = :'run' AND undone_by IS NULL), 0,
          'every change of the run is marked undone');
SELECT is((SELECT count(*)::int FROM calsync.outbox WHERE payload ? 'requeued_by_run'), 0, 'the requeued events are withdrawn');
SELECT throws_ok(format('SELECT * FROM remediation.undo(%L)', gen_random_uuid()), 'P0002', NULL,
                 'undo of an unknown run is a clear error');

SELECT * FROM finish();
