-- The outbox: each trigger path enqueues exactly what it should, in the booking's transaction.
SELECT plan(16);

SELECT tests.make_company() AS company \gset
SELECT tests.make_staff(:company, 'Lena Wagner', 5001) AS lena \gset
SELECT tests.make_staff(:company, 'Mia Richter', 5002) AS mia \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS cut \gset
SELECT tests.make_service(:company, 'Dauerwelle', 135, tests.dauerwelle_segments()) AS perm \gset
SELECT tests.make_customer(:company) AS cust \gset

CREATE TEMP VIEW events AS SELECT aggregateid::bigint AS appointment_id, type FROM calsync.outbox ORDER BY seq;

SELECT tests.make_appointment(:cust, :cut, :'lena', '2031-04-01 10:00+02') AS a \gset
SELECT results_eq(format('SELECT type::text FROM events WHERE appointment_id = %s', :a), $$VALUES ('create')$$,
                  'a live booking enqueues one create');
SELECT is((SELECT aggregatetype::text FROM calsync.outbox WHERE aggregateid = :'a'), 'appointment',
          'the event is shaped for the Debezium outbox router (aggregatetype appointment, aggregateid the id)');
SELECT is((SELECT payload->>'status' FROM calsync.outbox WHERE aggregateid = :'a'), 'confirmed', 'the payload carries the appointment');

UPDATE appointments SET starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour' WHERE id = :a;
UPDATE appointments SET staff_id = :'mia' WHERE id = :a;
SELECT results_eq(format('SELECT type::text FROM events WHERE appointment_id = %s', :a),
                  $$VALUES ('create'), ('reschedule'), ('reschedule')$$, 'a move and a change of staff each enqueue a reschedule');
UPDATE appointments SET sync_error_message = 'x', calcom_sync_status = 'failed' WHERE id = :a;
SELECT is((SELECT count(*)::int FROM events WHERE appointment_id = :a), 3, 'changes of sync bookkeeping enqueue nothing');
UPDATE appointments SET status = 'cancelled' WHERE id = :a;
SELECT results_eq(format('SELECT type::text FROM events WHERE appointment_id = %s', :a),
                  $$VALUES ('create'), ('reschedule'), ('reschedule'), ('cancel')$$, 'cancelling enqueues a cancel, in order');
UPDATE appointments SET status = 'confirmed' WHERE id = :a;
SELECT is((SELECT count(*)::int FROM events WHERE appointment_id = :a AND type = 'create'), 2, 'booking it again enqueues a create');

-- no loops
SELECT tests.make_appointment(:cust, :cut, :'lena', '2031-04-02 10:00+02', 'cancelled') AS c \gset
SELECT is((SELECT count(*)::int FROM events WHERE appointment_id = :c), 0, 'a booking created cancelled enqueues nothing');
INSERT INTO appointments (company_id, customer_id, service_id, staff_id, starts_at, ends_at, status, sync_origin)
VALUES (:company, :cust, :cut, :'mia', '2031-04-03 10:00+02', '2031-04-03 10:30+02', 'confirmed', 'calcom') RETURNING id AS from_calcom \gset
SELECT is((SELECT count(*)::int FROM events WHERE appointment_id = :from_calcom), 0, 'a booking that came from Cal.com is not sent back');
SET LOCAL calsync.writer = 'worker';
UPDATE appointments SET starts_at = starts_at + interval '2 hours', ends_at = ends_at + interval '2 hours' WHERE id = :a;
RESET calsync.writer;
SELECT is((SELECT count(*)::int FROM events WHERE appointment_id = :a), 5, 'the worker''s own writes enqueue nothing');

-- phases follow their appointment
SELECT tests.make_appointment(:cust, :perm, :'lena', '2031-04-05 09:00+02') AS p \gset
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(format('SELECT type::text FROM events WHERE appointment_id = %s', :p), $$VALUES ('create')$$,
                  'phases written with their appointment add no event of their own');
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :p), 6, 'the Dauerwelle''s 6 phases were derived at commit');
SELECT ok(calsync.is_bookable_status('confirmed') AND NOT calsync.is_bookable_status('completed'),
          'only pending, confirmed, scheduled and booked are synced');

-- NOTIFY only while a worker is idle
LISTEN calsync_outbox;
SELECT is((SELECT count(*)::int FROM calsync.outbox_listeners), 0, 'no worker listening');
INSERT INTO calsync.outbox_listeners (worker_id, idle) VALUES ('w1', true);
SELECT lives_ok(format($$SELECT tests.make_appointment(%s, %s, %L, '2031-04-06 10:00+02')$$, :cust, :cut, :'mia'),
                'enqueueing with an idle worker notifies (checked by the worker tests)');
SELECT is((SELECT count(*)::int FROM calsync.outbox WHERE type = 'create'), 4, 'every live booking so far enqueued a create');

SELECT * FROM finish();
