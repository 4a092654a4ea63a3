-- The three roles, checked with SET ROLE (what each may not do, in detail: 13-least-privilege).
SELECT plan(18);

SELECT tests.make_salon() AS s \gset
SELECT (:'s'::jsonb->>'customer')::bigint AS hans, (:'s'::jsonb->>'cut')::bigint AS cut, (:'s'::jsonb->>'lena')::uuid AS lena \gset
SELECT tests.make_appointment(:hans, :cut, :'lena', now() + interval '3 days') AS a \gset

SET ROLE calsync_readonly;
SELECT lives_ok('SELECT * FROM remediation.sync_health', 'readonly reads the dashboard');
SELECT lives_ok('SELECT * FROM remediation.failed_syncs', 'and the findings');
SELECT throws_ok('SELECT * FROM appointments', '42501', NULL, 'but no table');
SELECT throws_ok('SELECT * FROM remediation.log', '42501', NULL, 'not even the runbook''s log');
SELECT throws_ok('SELECT * FROM remediation.backfill_placeholder_emails()', '42501', NULL, 'and runs no runbook step');
RESET ROLE;

SET ROLE calsync_worker;
SELECT is(set_config('calsync.worker_token', 'w-secret-0123456789abcdef0123456789ab', false),
          'w-secret-0123456789abcdef0123456789ab', 'the worker presents its secret on its connection');
SELECT lives_ok($$SELECT calsync.register_listener('w')$$, 'registers under it');
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w', 10, '1 minute')), 1, 'the worker claims');
SELECT is_empty(format($$SELECT * FROM calsync.finish_sync_events('w', '[{"event_id": "%s", "appointment_id": %s, "category": "OK",
                          "bookings": [{"phase_id": null, "uid": "u1", "booking_id": 1, "event_type_id": 1,
                                        "start_at": "2031-05-01T09:00:00Z", "end_at": "2031-05-01T09:30:00Z"}],
                          "exchanges": [{"action": "create", "request_method": "POST", "request_path": "/v2/bookings",
                                         "duration_ms": 1, "category": "OK"}]}]', 8) WHERE recorded_outcome = 'lease_lost'$$,
                        (SELECT id FROM calsync.outbox LIMIT 1), :a),
                'and records outcomes through the delivery functions');
SELECT lives_ok('SELECT calsync.reap_expired_leases()', 'reaps');
SELECT throws_ok(format($$UPDATE appointments SET status = 'cancelled' WHERE id = %s$$, :a), '42501', NULL,
                 'but cannot change an appointment itself');
SELECT throws_ok('INSERT INTO calsync.outbox (aggregatetype, aggregateid, type) VALUES (''appointment'', ''1'', ''create'')',
                 '42501', NULL, 'nor write the outbox');
SELECT throws_ok('DELETE FROM appointments', '42501', NULL, 'or delete one');
SELECT throws_ok('SELECT * FROM remediation.log', '42501', NULL, 'or read the runbook''s log');
RESET ROLE;
SELECT is((SELECT calcom_v2_booking_uid::text FROM appointments WHERE id = :a), 'u1', 'its write went through');

SET ROLE calsync_remediator;
SELECT lives_ok('SELECT * FROM remediation.backfill_placeholder_emails(false, ''roles test'')', 'the remediator runs the runbook');
SELECT lives_ok('SELECT * FROM remediation.failed_syncs', 'and reads the views');
SELECT throws_ok('UPDATE appointments SET status = ''cancelled''', '42501', NULL, 'but changes tables only through the runbook');
RESET ROLE;

SELECT * FROM finish();
