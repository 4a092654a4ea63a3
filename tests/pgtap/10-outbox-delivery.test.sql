-- Delivery: claim (one per appointment, leased), coalescing, ownership, retries, dead letters, reaper, release.
SELECT plan(30);

SELECT tests.make_company() AS company \gset
SELECT tests.make_staff(:company, 'Lena Wagner', 5001) AS lena \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS cut \gset
SELECT tests.make_customer(:company) AS cust \gset
SELECT tests.make_customer(:company, 'Petra Müller') AS cust2 \gset
INSERT INTO calsync.outbox_listeners (worker_id) VALUES ('w1'), ('w2');

SELECT tests.make_appointment(:cust, :cut, :'lena', '2031-05-01 10:00+02') AS a \gset
UPDATE appointments SET starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour' WHERE id = :a;
SELECT tests.make_appointment(:cust2, :cut, :'lena', '2031-05-02 10:00+02') AS b \gset

SELECT results_eq(
    $$SELECT appointment_id, event_type, attempts FROM calsync.claim_sync_events('w1', 10, '5 minutes') ORDER BY 1$$,
    format('VALUES (%s::bigint, %L::text, 1), (%s::bigint, %L::text, 1)', :a, 'create', :b, 'create'),
    'a claim takes the oldest event of each appointment, never two of one appointment');
SELECT is((SELECT covers_seq FROM calsync.outbox_delivery d JOIN calsync.outbox o ON o.id = d.outbox_id WHERE o.aggregateid = :'a'),
          (SELECT max(seq) FROM calsync.outbox WHERE aggregateid = :'a'),
          'the claim covers every event of the appointment so far (they coalesce)');
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w2', 10, '5 minutes')), 0,
          'while an event is running, no other event of its appointment can be claimed');

SELECT (SELECT o.id FROM calsync.outbox o WHERE o.aggregateid = :'a' ORDER BY seq LIMIT 1) AS ea \gset
SELECT (SELECT o.id FROM calsync.outbox o WHERE o.aggregateid = :'b' ORDER BY seq LIMIT 1) AS eb \gset

SELECT results_eq(
    format($$SELECT recorded_event_id FROM calsync.finish_sync_events('w2', '[{"event_id": "%s", "appointment_id": %s, "category": "OK"}]', 8) WHERE recorded_outcome = 'lease_lost'$$, :'ea', :a),
    format($$VALUES (%L::uuid)$$, :'ea'), 'completion checks ownership: another worker''s completion is refused');

SELECT is_empty(format($$SELECT * FROM calsync.finish_sync_events('w1', '[{"event_id": "%s", "appointment_id": %s, "category": "OK",
    "bookings": [{"phase_id": null, "uid": "uid-a", "booking_id": 901, "start_at": "2031-05-01T09:00:00Z", "end_at": "2031-05-01T09:30:00Z", "event_type_id": 1}],
    "exchanges": [{"action": "create", "request_method": "POST", "request_path": "/v2/bookings",
                  "request_body": {"start": "x"}, "response_status": 201, "response_body": "{}", "duration_ms": 12.5, "category": "OK"}]}]', 8) WHERE recorded_outcome = 'lease_lost'$$, :'ea', :a),
    'the owner''s completion is accepted');
SELECT is((SELECT count(*)::int FROM calsync.outbox WHERE aggregateid = :'a'), 0, 'delivered: the event and the reschedule it covered are gone');
SELECT is((SELECT count(*)::int FROM calsync.outbox_delivery WHERE aggregateid = :'a'), 0, 'and so is their delivery state');
SELECT results_eq(format('SELECT calcom_v2_booking_uid::text, calcom_sync_status::text, requires_manual_review FROM appointments WHERE id = %s', :a),
                  $$VALUES ('uid-a', 'synced', false)$$, 'the appointment records the booking');
SELECT is((SELECT response_status FROM calsync.sync_attempts WHERE appointment_id = :a), 201, 'the attempt is archived');
SELECT is((SELECT uid FROM calsync.synced_bookings WHERE appointment_id = :a AND slot = 0), 'uid-a', 'what Cal.com has is recorded');

-- a retryable failure: retried later with backoff, not before
SELECT is_empty(format($$SELECT * FROM calsync.finish_sync_events('w1', '[{"event_id": "%s", "appointment_id": %s, "outcome": "retry",
    "category": "SERVER_ERROR", "error": "HTTP 500: {\"message\":\"There was an error, please try again later.\"}"}]', 8) WHERE recorded_outcome = 'lease_lost'$$, :'eb', :b),
    'a retryable failure is recorded');
SELECT results_eq(format($$SELECT status, attempts, last_category, next_attempt_at > now() + interval '3 seconds' FROM calsync.outbox_delivery WHERE outbox_id = %L$$, :'eb'),
                  $$VALUES ('retry', 1, 'SERVER_ERROR', true)$$, 'it waits with backoff');
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w1', 10, '5 minutes')), 0, 'and is not claimable before its time');
SELECT is((SELECT attempts FROM calsync.claim_sync_events('w1', 10, '5 minutes', now() + interval '2 hours')), 2,
          'then it is claimed again, as attempt 2');
SELECT is_empty(format($$SELECT * FROM calsync.finish_sync_events('w1', '[{"event_id": "%s", "appointment_id": %s, "outcome": "retry",
    "category": "SERVER_ERROR", "error": "HTTP 503"}]', 2) WHERE recorded_outcome = 'lease_lost'$$, :'eb', :b), 'the last allowed attempt fails too');
SELECT results_eq(format($$SELECT d.status, a.calcom_sync_status::text, a.requires_manual_review, a.sync_error_code::text
                           FROM calsync.outbox_delivery d JOIN appointments a ON a.id = %s WHERE d.outbox_id = %L$$, :b, :'eb'),
                  $$VALUES ('dead', 'failed', true, 'SERVER_ERROR')$$,
                  'after max attempts the event is dead and the appointment flagged for manual review');

-- leases: the reaper takes back expired ones and those of workers that stopped heart-beating
SELECT tests.make_appointment(:cust, :cut, :'lena', '2031-05-03 10:00+02') AS c \gset
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w1', 10, '1 second')), 1, 'a new event is claimed with a short lease');
SELECT is(calsync.reap_expired_leases(now() + interval '5 seconds'), 1, 'the reaper returns the expired lease');
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w2', 10, '5 minutes', now() + interval '5 seconds')), 1,
          'and another worker can claim it');
UPDATE calsync.outbox_listeners SET heartbeat_at = now() - interval '10 minutes' WHERE worker_id = 'w2';
SELECT is(calsync.reap_expired_leases(now(), '60 seconds'), 1, 'a worker that stopped heart-beating loses its leases');

-- a claim whose reply was lost: the worker gives back what it holds but does not know of, and only that
SELECT tests.make_appointment(:cust, :cut, :'lena', '2031-05-04 10:00+02') AS d \gset
SELECT tests.make_appointment(:cust2, :cut, :'lena', '2031-05-05 10:00+02') AS e \gset
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w1', 10, '5 minutes', now() + interval '5 seconds')), 3,
          'w1 claims three events (one reply lost, say)');
SELECT (SELECT o.id FROM calsync.outbox o WHERE o.aggregateid = :'d' ORDER BY seq LIMIT 1) AS ed \gset
SELECT is(calsync.release_unknown_leases('w1', ARRAY[:'ed'::uuid]), 2, 'w1 holds one knowingly; the other two are given back');
SELECT results_eq(
    $$SELECT o.aggregateid::bigint, d.status, d.locked_by FROM calsync.outbox_delivery d JOIN calsync.outbox o ON o.id = d.outbox_id
      WHERE d.status IN ('running', 'retry') AND o.aggregateid::bigint IN ($$ || :c || ',' || :d || ',' || :e || ') ORDER BY 1',
    format($$VALUES (%s::bigint, 'retry', NULL::text), (%s::bigint, 'running', 'w1'), (%s::bigint, 'retry', NULL::text)$$, :c, :d, :e),
    'the held lease stays; the unknown ones are due again for anyone');

-- one batch that names a slot twice (found by the lookup, then moved: a new uid) and holds two results of one
-- event (its lease ran out meanwhile and it was claimed again): recorded, the last word counts (the chaos soak
-- once wedged on "ON CONFLICT DO UPDATE command cannot affect row a second time")
SELECT tests.make_appointment(:cust2, :cut, :'lena', '2031-05-06 10:00+02') AS f \gset
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w2', 10, '5 minutes', now() + interval '5 seconds')), 3,
          'w2 claims the two given-back events and the new one');
SELECT (SELECT o.id FROM calsync.outbox o WHERE o.aggregateid = :'f' ORDER BY seq LIMIT 1) AS ef \gset
SELECT is_empty(format($$SELECT * FROM calsync.finish_sync_events('w2', '[
    {"event_id": "%1$s", "appointment_id": %2$s, "category": "SERVER_ERROR", "error": "HTTP 500",
     "bookings": [{"phase_id": null, "uid": "uid-f1", "booking_id": 911, "start_at": "2031-05-06T08:00:00Z", "end_at": "2031-05-06T08:30:00Z", "event_type_id": 1}]},
    {"event_id": "%1$s", "appointment_id": %2$s, "category": "OK",
     "bookings": [{"phase_id": null, "uid": "uid-f1", "booking_id": 911, "start_at": "2031-05-06T08:00:00Z", "end_at": "2031-05-06T08:30:00Z", "event_type_id": 1},
                  {"phase_id": null, "uid": "uid-f3", "booking_id": 913, "start_at": "2031-05-06T08:00:00Z", "end_at": "2031-05-06T08:30:00Z", "event_type_id": 1}]}]', 8) WHERE recorded_outcome = 'lease_lost'$$,
    :'ef', :f), 'a batch naming one slot several times, with two results of one event, is recorded');
SELECT results_eq(format('SELECT s.uid, a.calcom_v2_booking_uid::text, a.calcom_sync_status::text FROM calsync.synced_bookings s JOIN appointments a ON a.id = s.appointment_id WHERE s.appointment_id = %s', :f),
                  $$VALUES ('uid-f3', 'uid-f3', 'synced')$$, 'the last word counts: the last booking of the slot and the last result');
SELECT is((SELECT count(*)::int FROM calsync.outbox_delivery WHERE aggregateid = :'f'), 0, 'and the event is delivered');

-- a move cancelled the old booking and the new create failed: the live appointment forgets the cancelled uid, so
-- the next attempt books it again (the chaos soak once found such appointments "synced" with no booking at Cal.com)
UPDATE appointments SET starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour' WHERE id = :f;
SELECT is((SELECT count(*)::int FROM calsync.claim_sync_events('w2', 10, '5 minutes', now() + interval '5 seconds')), 1,
          'the move is claimed');
SELECT (SELECT o.id FROM calsync.outbox o WHERE o.aggregateid = :'f' ORDER BY seq DESC LIMIT 1) AS ef2 \gset
SELECT is_empty(format($$SELECT * FROM calsync.finish_sync_events('w2', '[
    {"event_id": "%1$s", "appointment_id": %2$s, "category": "SERVER_ERROR", "error": "HTTP 500",
     "bookings": [{"phase_id": null, "uid": "uid-f3", "cancelled": true}]}]', 8) WHERE recorded_outcome = 'lease_lost'$$,
    :'ef2', :f), 'a cancel then a failed create is recorded');
SELECT results_eq(format('SELECT calcom_v2_booking_uid::text, calcom_v2_booking_id::text, (SELECT count(*)::int FROM calsync.synced_bookings WHERE appointment_id = %1$s) FROM appointments WHERE id = %1$s', :f),
                  $$VALUES (NULL::text, NULL::text, 0)$$, 'the cancelled booking is nobody''s any more: the next attempt books again');

SELECT * FROM finish();
