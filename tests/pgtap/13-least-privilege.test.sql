-- Least privilege, checked with SET ROLE. The worker acts only as the worker it registered (its secret in
-- calsync.worker_token), within bounds (lease, retention, reaping, the database's time), and reads no other
-- worker's id or secret; calsync_readonly reads the views without names or error texts; calsync_remediator
-- the views in full and the runbook; and each role has exactly the grants listed at the end.
SELECT plan(116);

\set ta 'worker-a-secret-0123456789abcdef0123456789'
\set tb 'worker-b-secret-0123456789abcdef0123456789'

SELECT tests.make_salon() AS s \gset
SELECT (:'s'::jsonb->>'customer')::bigint AS hans, (:'s'::jsonb->>'cut')::bigint AS cut, (:'s'::jsonb->>'lena')::uuid AS lena \gset
SELECT tests.make_appointment(:hans, :cut, :'lena', now() + interval '3 days') AS a1 \gset
SELECT tests.make_appointment(:hans, :cut, :'lena', now() + interval '4 days') AS a2 \gset
SELECT tests.make_appointment(:hans, :cut, :'lena', now() + interval '5 days') AS a3 \gset
SELECT tests.make_appointment(:hans, :cut, :'lena', now() + interval '6 days') AS a4 \gset
-- a dead letter of 3 days, and attempts of 10 and 100 days (the floors are 7 and 30 days)
INSERT INTO calsync.outbox_delivery (outbox_id, aggregateid, status, attempts, covers_seq, processed_at, last_error, last_category)
SELECT id, aggregateid, 'dead', 8, seq, now() - interval '3 days',
       'HTTP 400: responses - {email}email_validation_error (hans.schuster@example.com)', 'VALIDATION'
FROM calsync.outbox WHERE aggregateid = :'a4';
INSERT INTO calsync.sync_attempts (appointment_id, worker_id, action, request_method, request_path, duration_ms, category, created_at)
VALUES (:a4, 'old', 'create', 'POST', '/v2/bookings', 1, 'VALIDATION', now() - interval '10 days'),
       (:a4, 'old', 'create', 'POST', '/v2/bookings', 1, 'VALIDATION', now() - interval '100 days');

-- worker A: registers, claims and renews within the bound
SET ROLE calsync_worker;
SELECT is(set_config('calsync.worker_token', :'ta', false), :'ta', 'worker A presents its secret on its connection');
SELECT lives_ok($$SELECT calsync.register_listener('worker-a')$$, 'worker A registers under it');
SELECT lives_ok($$SELECT calsync.register_listener('worker-a')$$, 'and may register again with it (a restart of its pool)');
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('worker-a', 2, '5 minutes')), 2, 'worker A claims as itself');
SELECT throws_ok($$SELECT * FROM calsync.claim_sync_events('worker-a', 1, '100 years')$$, 'CS010',
                 'calsync.claim_sync_events: a lease of 100 years is refused: calsync_worker leases for more than 0 and at most 01:00:00 (calsync.settings worker_max_lease)',
                 'a claim with a lease beyond worker_max_lease is refused');
SELECT throws_ok($$SELECT * FROM calsync.claim_sync_events('worker-a', 1, '-1 minute')$$, 'CS010', NULL,
                 'so is a lease that is no lease');
SELECT throws_ok($$SELECT * FROM calsync.claim_sync_events('worker-a', 1, '5 minutes', now() + interval '1 hour')$$, 'CS013', NULL,
                 'and a claim at a time of its own (it would stretch the lease and take retries early)');
RESET ROLE;
SELECT array_agg(outbox_id)::text AS held_a FROM calsync.outbox_delivery WHERE locked_by = 'worker-a' \gset
SET ROLE calsync_worker;
SELECT throws_ok(format($$SELECT calsync.renew_leases('worker-a', %L, '2 hours')$$, :'held_a'), 'CS010',
                 'calsync.renew_leases: a lease of 02:00:00 is refused: calsync_worker leases for more than 0 and at most 01:00:00 (calsync.settings worker_max_lease)',
                 'a renewal beyond the bound is refused too');
SELECT is(calsync.renew_leases('worker-a', :'held_a', '1 hour'), 2, 'a renewal within it keeps both leases');
SELECT lives_ok($$SELECT calsync.heartbeat_listener('worker-a', false)$$, 'worker A heart-beats');

-- worker B cannot act as A, nor touch A's heartbeat or leases
SELECT is(set_config('calsync.worker_token', :'tb', false), :'tb', 'worker B presents its own secret');
SELECT throws_ok($$SELECT calsync.register_listener('worker-a')$$, 'CS021', NULL,
                 'worker B cannot register worker A''s id while A is alive');
SELECT lives_ok($$SELECT calsync.register_listener('worker-b')$$, 'it registers its own');
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('worker-b', 10, '5 minutes')), 1, 'and claims the event left');
SELECT throws_ok($$SELECT * FROM calsync.claim_sync_events('worker-a', 10, '5 minutes')$$, 'CS020',
                 'calsync.claim_sync_events: this session is not worker worker-a (no worker of that id is registered under its calsync.worker_token)',
                 'B cannot claim as A');
SELECT throws_ok(format($$SELECT calsync.renew_leases('worker-a', %L, '5 minutes')$$, :'held_a'), 'CS020', NULL,
                 'nor renew A''s leases');
SELECT is(calsync.renew_leases('worker-b', :'held_a', '5 minutes'), 0, 'and renewing them under its own id touches none');
SELECT throws_ok(format($$SELECT calsync.release_sync_events('worker-a', %L)$$, :'held_a'), 'CS020', NULL,
                 'nor release A''s events');
SELECT throws_ok($$SELECT calsync.release_unknown_leases('worker-a', '{}')$$, 'CS020', NULL,
                 'nor give back what A holds as if A had lost a claim''s reply');
SELECT throws_ok($$SELECT calsync.heartbeat_listener('worker-a', true)$$, 'CS021', NULL,
                 'nor refresh A''s heartbeat or set its idle flag');
SELECT throws_ok($$SELECT calsync.remove_listener('worker-a')$$, 'CS020', NULL, 'nor delete A''s heartbeat');
SELECT throws_ok($$SELECT calsync.reap_expired_leases(now(), '0 seconds')$$, 'CS012',
                 'calsync.reap_expired_leases: reaping the leases of workers silent for 00:00:00 is refused: calsync_worker waits at least 00:00:30 (calsync.settings worker_min_dead_after)',
                 'nor take live workers'' leases by reaping after no silence at all');
SELECT throws_ok($$SELECT calsync.reap_expired_leases(now() + interval '1 day')$$, 'CS013', NULL,
                 'nor by reaping at a time of its own (every lease would have expired)');
SELECT is(calsync.reap_expired_leases(now(), '30 seconds'), 0, 'the reaper at the floor takes nothing from live workers');
RESET ROLE;
SELECT results_eq($$SELECT worker_id, idle, heartbeat_at = now() FROM calsync.outbox_listeners ORDER BY 1$$,
                  $$VALUES ('worker-a', false, true), ('worker-b', false, true)$$, 'A''s heartbeat is as A left it');
SELECT is((SELECT count(*)::int FROM calsync.outbox_delivery WHERE locked_by = 'worker-a' AND status = 'running'), 2,
          'and so are its leases');
SELECT array_agg(outbox_id)::text AS held_b FROM calsync.outbox_delivery WHERE locked_by = 'worker-b' \gset
SET ROLE calsync_worker;

-- no table access that could do the same: other workers' ids and secrets, the archive, the queue, the limits
SELECT throws_ok('SELECT worker_id, token_hash FROM calsync.outbox_listeners', '42501', NULL,
                 'the worker reads no other worker''s id or secret');
SELECT throws_ok('SELECT locked_by FROM calsync.outbox_delivery', '42501', NULL, 'nor who holds which lease');
SELECT throws_ok($$UPDATE calsync.outbox_listeners SET heartbeat_at = now() - interval '1 day'$$, '42501', NULL,
                 'it cannot age another worker''s heartbeat');
SELECT throws_ok($$DELETE FROM calsync.outbox_listeners WHERE worker_id = 'worker-a'$$, '42501', NULL, 'nor delete it');
SELECT throws_ok($$INSERT INTO calsync.outbox_listeners (worker_id) VALUES ('worker-c')$$, '42501', NULL,
                 'nor write a listener row itself');
SELECT throws_ok('DELETE FROM calsync.sync_attempts', '42501', NULL, 'it cannot delete the attempts archive');
SELECT throws_ok('SELECT response_body FROM calsync.sync_attempts', '42501', NULL, 'nor read it');
SELECT throws_ok('DELETE FROM calsync.outbox', '42501', NULL, 'nor delete events');
SELECT throws_ok($$UPDATE calsync.outbox_delivery SET status = 'retry'$$, '42501', NULL, 'nor change their delivery');
SELECT throws_ok('DELETE FROM calsync.outbox_delivery', '42501', NULL, 'nor delete a dead letter');
SELECT throws_ok($$UPDATE calsync.settings SET value = '100 years' WHERE key = 'worker_max_lease'$$, '42501', NULL,
                 'nor lift its own limits');
SELECT throws_ok($$SELECT calsync.enforce_worker_limits('x', now())$$, '42501', NULL,
                 'nor call the checks themselves');
SELECT throws_ok('SELECT * FROM remediation.failed_syncs', '42501', NULL, 'nor read the remediation views');

-- what it does need
SELECT lives_ok($$SELECT (SELECT count(*) FROM appointments) + (SELECT count(*) FROM appointment_phases)
                       + (SELECT count(*) FROM customers) + (SELECT count(*) FROM services) + (SELECT count(*) FROM staff)
                       + (SELECT count(*) FROM calcom_event_map)$$, 'the worker reads what it syncs');
SELECT lives_ok(format($$SELECT (SELECT count(*) FROM calsync.outbox) + (SELECT count(*) FROM calsync.synced_bookings)
                              + (SELECT count(*) FROM calsync.superseded_phases) + (SELECT count(*) FROM calsync.integrity_issues)
                              + (SELECT count(*) FROM remediation.host_conflicts_of(%s))$$, :a1),
                'and what it knows about them (events, bookings made, superseded phases, open issues, host conflicts)');
SELECT lives_ok('SELECT version_num FROM alembic_version', 'and the revision it runs against');
SELECT results_eq('SELECT depth, dead FROM calsync.queue_stats()', 'VALUES (3::bigint, 1::bigint)',
                  'the queue''s depth comes from calsync.queue_stats');

-- retention: not below the floors, nor at a time of its own
SELECT throws_ok($$SELECT calsync.prune_sync_history('0 s', '0 s')$$, 'CS011',
                 'calsync.prune_sync_history: keeping dead events for 00:00:00 is refused: calsync_worker keeps them at least 7 days (calsync.settings worker_min_keep_dead)',
                 'the worker cannot prune the dead letters below the floor');
SELECT throws_ok($$SELECT calsync.prune_sync_history('7 days', '29 days')$$, 'CS011',
                 'calsync.prune_sync_history: keeping sync attempts for 29 days is refused: calsync_worker keeps them at least 30 days (calsync.settings worker_min_keep_attempts)',
                 'nor the attempts archive');
SELECT throws_ok($$SELECT calsync.prune_sync_history(p_now => now() + interval '1 year')$$, 'CS013', NULL,
                 'nor prune at a time of its own');
SELECT is(calsync.prune_sync_history(), 1, 'with its defaults it prunes what is old enough: the 100-day-old attempt');
SELECT is(calsync.prune_sync_history('7 days', '30 days'), 0,
          'at the floors the 3-day-old dead letter and the 10-day-old attempt stay');

-- no secret, or a short one: no worker at all
SELECT is(set_config('calsync.worker_token', '', false), '', 'a session without a secret');
SELECT throws_ok($$SELECT * FROM calsync.claim_sync_events('worker-b', 1, '5 minutes')$$, 'CS020', NULL,
                 'cannot act as any worker');
SELECT throws_ok($$SELECT calsync.register_listener('worker-c')$$, 'CS020', NULL, 'nor register one');
SELECT is(set_config('calsync.worker_token', 'short', false), 'short', 'a secret too short to be one');
SELECT throws_ok($$SELECT calsync.register_listener('worker-c')$$, 'CS020', NULL, 'is refused');

-- an id silent for worker_min_dead_after is free again; its leases go back, and the old holder is out
RESET ROLE;
UPDATE calsync.outbox_listeners SET heartbeat_at = now() - interval '5 minutes' WHERE worker_id = 'worker-a';
SET ROLE calsync_worker;
SELECT is(set_config('calsync.worker_token', :'tb', false), :'tb', 'worker B again');
SELECT lives_ok($$SELECT calsync.register_listener('worker-a')$$,
                'once A has been silent for worker_min_dead_after, its id may be registered under another secret');
RESET ROLE;
SELECT results_eq(format($$SELECT status, locked_by, last_error FROM calsync.outbox_delivery WHERE outbox_id = ANY (%L::uuid[])$$, :'held_a'),
                  $$VALUES ('retry', NULL::text, 'lease taken back: the worker holding it stopped, and its id was registered again'),
                           ('retry', NULL::text, 'lease taken back: the worker holding it stopped, and its id was registered again')$$,
                  'and what the silent A still held is due again at once');
SET ROLE calsync_worker;
SELECT is(set_config('calsync.worker_token', :'ta', false), :'ta', 'the old A comes back');
SELECT throws_ok($$SELECT calsync.heartbeat_listener('worker-a', false)$$, 'CS021', NULL, 'it is not A any more');
SELECT throws_ok($$SELECT * FROM calsync.claim_sync_events('worker-a', 1, '5 minutes')$$, 'CS020', NULL,
                 'and cannot claim as A');

-- B stops: gives back what it holds, removes its own heartbeat
SELECT is(set_config('calsync.worker_token', :'tb', false), :'tb', 'worker B stops');
SELECT is(calsync.release_sync_events('worker-b', :'held_b'), 1, 'it gives back what it holds');
SELECT is(calsync.remove_listener('worker-b'), true, 'and removes its own heartbeat');
RESET ROLE;

-- an owner or a superuser is not bound (a session that presents a secret is held to it, even the owner's)
SELECT is(set_config('calsync.worker_token', '', false), '', 'the owner, without a secret');
SELECT is(calsync.prune_sync_history('0 s', '0 s'), 2, 'an owner or superuser may prune below the floors');
SELECT is((SELECT count(*)::int FROM calsync.outbox_delivery WHERE status = 'dead'), 0, 'the dead letter is gone');
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('ops', 1, '2 hours', now() + interval '1 minute')), 1,
          'and may lease for longer, at a time of its own');

-- calsync_readonly: the views, without names and error texts
SET ROLE calsync_readonly;
SELECT lives_ok(format('SELECT * FROM remediation.%I', v), format('readonly reads remediation.%s', v))
FROM unnest(ARRAY['sync_health', 'error_distribution', 'failed_syncs', 'duplicate_bookings', 'host_conflicts',
                  'composites_without_phases', 'appointments_without_service', 'integrity_issues', 'sync_diagnosis',
                  'broken_phases', 'host_overlaps', 'shared_bookings', 'unsettled_appointments', 'categories']) AS v;
SELECT lives_ok('SELECT customer_id, email, phone, source, upcoming_appointments FROM remediation.customers_missing_contact',
                'readonly reads customers_missing_contact without the name');
SELECT throws_ok('SELECT name FROM remediation.customers_missing_contact', '42501', NULL, 'but not the name');
SELECT lives_ok('SELECT appointment_id, customer_id, starts_at, ends_at, status, calcom_sync_status FROM remediation.past_unsynced',
                'it reads past_unsynced without the error text');
SELECT throws_ok('SELECT last_error FROM remediation.past_unsynced', '42501', NULL, 'but not the error text');
SELECT lives_ok('SELECT outbox_id, appointment_id, type, created_at, age, status, attempts, next_attempt_at, locked_by, locked_until, last_category FROM remediation.stuck_outbox',
                'it reads stuck_outbox without the error text');
SELECT throws_ok('SELECT last_error FROM remediation.stuck_outbox', '42501', NULL, 'but not the error text');
SELECT lives_ok('SELECT outbox_id, appointment_id, type, attempts, last_category, created_at, died_at, recommended_action FROM remediation.dead_letters',
                'it reads dead_letters without the error text');
SELECT throws_ok('SELECT * FROM remediation.dead_letters', '42501', NULL, 'but not the error text (nor SELECT *)');
SELECT throws_ok('SELECT name, email FROM customers', '42501', NULL, 'it reads no table');
SELECT throws_ok('SELECT * FROM calsync.outbox_listeners', '42501', NULL, 'no worker''s id or secret');
SELECT throws_ok('SELECT * FROM calsync.sync_attempts', '42501', NULL, 'no archived request or response');
SELECT throws_ok('SELECT * FROM remediation.log', '42501', NULL, 'not the runbook''s log (before and after images)');
SELECT throws_ok('SELECT * FROM remediation.failure_diagnoses', '42501', NULL, 'nor its diagnoses table');
SELECT throws_ok('SELECT * FROM calsync.queue_stats()', '42501', NULL, 'and runs no worker function');
SELECT throws_ok($$SELECT * FROM remediation.requeue_failures(false, 'test')$$, '42501', NULL, 'nor a runbook step');
RESET ROLE;

-- calsync_remediator: the views in full, the runbook and its log, nothing of the worker's
SET ROLE calsync_remediator;
SELECT lives_ok(format('SELECT * FROM remediation.%I', v), format('the remediator reads remediation.%s in full', v))
FROM unnest(ARRAY['customers_missing_contact', 'past_unsynced', 'stuck_outbox', 'dead_letters']) AS v;
SELECT lives_ok($$SELECT * FROM remediation.backfill_placeholder_emails(false, 'least privilege test')$$, 'it runs the runbook');
SELECT lives_ok('SELECT (SELECT count(*) FROM remediation.log) + (SELECT count(*) FROM remediation.runs)',
                'and reads its log and runs');
SELECT lives_ok($$INSERT INTO remediation.runs (run_id, operator, steps, dry_run) VALUES ('6f9619ff-8b86-d011-b42d-00c04fc964ff', 'test', '{placeholder_emails}', true)$$,
                'it records a run');
SELECT lives_ok($$UPDATE remediation.runs SET finished_at = now() WHERE run_id = '6f9619ff-8b86-d011-b42d-00c04fc964ff'$$,
                'and finishes it');
SELECT throws_ok('DELETE FROM remediation.log', '42501', NULL, 'but cannot rewrite the log');
SELECT throws_ok($$SELECT * FROM calsync.claim_sync_events('x', 1, '1 minute')$$, '42501', NULL, 'it is no worker');
SELECT throws_ok('SELECT * FROM calsync.sync_attempts', '42501', NULL, 'and reads no archive');
SELECT throws_ok($$UPDATE appointments SET status = 'cancelled'$$, '42501', NULL, 'nor changes a table itself');
RESET ROLE;

-- every grant, listed: what each role may do to which relation, and which SECURITY DEFINER functions it may run
CREATE TEMP VIEW grants AS
SELECT r AS role, c.oid::regclass::text AS relation,
       string_agg(p || CASE WHEN has_table_privilege(r, c.oid, p) THEN '' ELSE ' (some columns)' END, ', ' ORDER BY p) AS privileges
FROM unnest(ARRAY['calsync_worker', 'calsync_readonly', 'calsync_remediator']) AS r
CROSS JOIN pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
WHERE n.nspname IN ('public', 'calsync', 'remediation') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  AND (has_table_privilege(r, c.oid, p)
       OR (p IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') AND has_any_column_privilege(r, c.oid, p)))
GROUP BY 1, 2;
SELECT set_eq($$SELECT relation, privileges FROM grants WHERE role = 'calsync_worker'$$,
              $$VALUES ('alembic_version', 'SELECT'), ('appointments', 'SELECT'), ('appointment_phases', 'SELECT'),
                       ('customers', 'SELECT'), ('services', 'SELECT'), ('staff', 'SELECT'), ('calcom_event_map', 'SELECT'),
                       ('calsync.outbox', 'SELECT'), ('calsync.synced_bookings', 'SELECT'),
                       ('calsync.superseded_phases', 'SELECT'), ('calsync.integrity_issues', 'SELECT'),
                       ('calsync.company_settings', 'SELECT'), ('calsync.settings', 'SELECT')$$,
              'calsync_worker reads what it syncs and writes nothing');
SELECT set_eq($$SELECT relation, privileges FROM grants WHERE role = 'calsync_readonly'$$,
              $$SELECT 'remediation.' || v, CASE WHEN v IN ('customers_missing_contact', 'past_unsynced', 'stuck_outbox', 'dead_letters',
                                                            'customers_with_invalid_contact')
                                                 THEN 'SELECT (some columns)' ELSE 'SELECT' END
                FROM unnest(ARRAY['sync_health', 'error_distribution', 'failed_syncs', 'duplicate_bookings', 'past_unsynced',
                                  'host_conflicts', 'composites_without_phases', 'customers_missing_contact',
                                  'appointments_without_service', 'stuck_outbox', 'dead_letters', 'integrity_issues',
                                  'sync_diagnosis', 'broken_phases', 'host_overlaps', 'shared_bookings',
                                  'unsettled_appointments', 'categories', 'customers_with_invalid_contact',
                                  'reconcile_findings', 'calcom_bookings_without_appointment',
                                  'refused_calcom_changes']) AS v$$,
              'calsync_readonly reads the remediation views and nothing else');
SELECT set_eq($$SELECT relation, privileges FROM grants WHERE role = 'calsync_remediator'$$,
              $$SELECT 'remediation.' || v, CASE v WHEN 'runs' THEN 'INSERT, SELECT, UPDATE' ELSE 'SELECT' END
                FROM unnest(ARRAY['sync_health', 'error_distribution', 'failed_syncs', 'duplicate_bookings', 'past_unsynced',
                                  'host_conflicts', 'composites_without_phases', 'customers_missing_contact',
                                  'appointments_without_service', 'stuck_outbox', 'dead_letters', 'integrity_issues',
                                  'sync_diagnosis', 'broken_phases', 'host_overlaps', 'shared_bookings',
                                  'unsettled_appointments', 'categories', 'log', 'runs',
                                  'customers_with_invalid_contact', 'reconcile_findings',
                                  'calcom_bookings_without_appointment', 'refused_calcom_changes']) AS v$$,
              'calsync_remediator reads the views in full and the runbook''s log, and records runs');
SELECT set_eq($$SELECT column_name::text FROM information_schema.column_privileges
                WHERE grantee = 'calsync_readonly' AND table_schema = 'remediation' AND table_name = 'customers_missing_contact'$$,
              ARRAY['customer_id', 'email', 'phone', 'source', 'upcoming_appointments'],
              'customers_missing_contact: every column but the name');
SELECT set_eq($$SELECT table_name::text, column_name::text FROM information_schema.column_privileges
                WHERE grantee = 'calsync_readonly' AND table_schema = 'remediation'
                  AND column_name IN ('last_error', 'error_detail', 'name', 'customer_name')$$,
              $$VALUES ('failed_syncs', 'customer_name'), ('failed_syncs', 'last_error'), ('failed_syncs', 'error_detail')$$,
              'no name or error text for readonly but in failed_syncs (read through a function that returns every column)');
CREATE TEMP VIEW definer_grants AS
SELECT r AS role, p.oid::regprocedure::text AS function
FROM unnest(ARRAY['calsync_worker', 'calsync_readonly', 'calsync_remediator', 'public']) AS r
CROSS JOIN pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('calsync', 'remediation') AND p.prosecdef AND has_function_privilege(r, p.oid, 'EXECUTE');
SELECT set_eq($$SELECT function FROM definer_grants WHERE role = 'calsync_worker'$$,
              ARRAY['calsync.claim_sync_events(text,integer,interval,timestamp with time zone)',
                    'calsync.finish_sync_events(text,jsonb,integer,timestamp with time zone,interval,interval)',
                    'calsync.reap_expired_leases(timestamp with time zone,interval)',
                    'calsync.release_sync_events(text,uuid[],timestamp with time zone)',
                    'calsync.release_unknown_leases(text,uuid[],timestamp with time zone)',
                    'calsync.renew_leases(text,uuid[],interval,timestamp with time zone)',
                    'calsync.prune_sync_history(interval,interval,integer,timestamp with time zone)',
                    'calsync.register_listener(text,timestamp with time zone)',
                    'calsync.heartbeat_listener(text,boolean,timestamp with time zone)',
                    'calsync.remove_listener(text)', 'calsync.queue_stats(timestamp with time zone)',
                    'calsync.report_key_problem(text,text,text,text,timestamp with time zone)',
                    'calsync.clear_key_problem(text,text,timestamp with time zone)',
                    'calsync.claim_sync_events(text,integer,interval,bigint[],integer,timestamp with time zone)',
                    'calsync.take_rate_slots(text,text,integer,integer,interval,interval,timestamp with time zone)',
                    'calsync.pause_rate_limit(text,text,double precision,text,timestamp with time zone)',
                    'calsync.queue_stats_by_company(timestamp with time zone)',
                    'calsync.rate_limit_stats(timestamp with time zone)',
                    'remediation.host_conflicts_of(bigint)'],
              'calsync_worker runs the delivery and listener functions, and nothing else SECURITY DEFINER');
SELECT set_eq($$SELECT function FROM definer_grants WHERE role = 'calsync_readonly'$$,
              ARRAY['remediation.failure_category(bigint)', 'remediation.blocking_cause(bigint)',
                    'remediation.host_conflicts_of(bigint)', 'remediation.failed_syncs_without_jit()',
                    'remediation.duplicate_bookings_without_jit()', 'remediation.host_conflicts_without_jit()',
                    'remediation.composites_without_phases_without_jit()'],
              'calsync_readonly runs only the views'' helpers');
SELECT is_empty($$SELECT function FROM definer_grants WHERE role = 'calsync_remediator' AND function NOT LIKE 'remediation.%'$$,
                'calsync_remediator runs the remediation functions only');
SELECT is_empty($$SELECT function FROM definer_grants WHERE role = 'public'$$, 'and PUBLIC no SECURITY DEFINER function at all');

SELECT * FROM finish();
