-- Rule: host_busy_time_no_overlap. A host is the Cal.com user, else the staff row; processing gaps are free.
SELECT plan(19);

SELECT tests.make_company() AS company \gset
SELECT tests.make_staff(:company, 'Fabian Spitzer', 1414768) AS fabian_a \gset
SELECT tests.make_staff(:company, 'Fabian Spitzer', 1414768) AS fabian_b \gset
SELECT tests.make_staff(:company, 'Lena Wagner') AS lena \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS cut \gset
SELECT tests.make_service(:company, 'Färben mit Pause', 120, '[
   {"key":"A","name":"Auftragen","durationMin":30,"type":"active","order":1},
   {"key":"A_gap","name":"Einwirken","durationMin":60,"type":"processing","staff_required":false,"order":2},
   {"key":"B","name":"Ausspülen","durationMin":30,"type":"active","order":3}]') AS color \gset
SELECT tests.make_customer(:company) AS c1 \gset
SELECT tests.make_customer(:company, 'Petra Müller') AS c2 \gset
SELECT tests.make_customer(:company, 'Klaus Weber') AS c3 \gset

SELECT tests.make_appointment(:c1, :cut, :'fabian_a', '2030-12-06 14:00+01') AS a750 \gset
SELECT is((SELECT count(*)::int FROM calsync.host_busy_time WHERE appointment_id = :a750), 1, 'a booking reserves its host''s time');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-06 14:15+01')$$, :c2, :cut, :'fabian_b')),
          '23P01 host_busy_time_no_overlap',
          'the same person under another staff row (one Cal.com user) cannot be booked at an overlapping time (#750/#751)');
SELECT matches(tests.message_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-06 14:15+01')$$, :c2, :cut, :'fabian_b')),
               format('conflicts with existing key \(host_id, busy, \(appointment_id \+ 0\)\)=\(1414768, .*, %s\)', :a750),
               'the error names the host and the booking in the way');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-06 14:30+01')$$, :c2, :cut, :'fabian_b')),
          'ok', 'back-to-back bookings are fine ([start, end) ranges)');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-06 14:00+01')$$, :c3, :cut, :'lena')),
          'ok', 'another host is free at the same time');

-- a staff row without a Cal.com user is its own host
SELECT tests.make_staff(:company, 'Aushilfe') AS temp \gset
SELECT tests.make_appointment(:c1, :cut, :'temp', '2030-12-07 09:00+01') AS t1 \gset
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-07 09:10+01')$$, :c2, :cut, :'temp')),
          '23P01 host_busy_time_no_overlap', 'without a Cal.com user the staff row is the host');

-- processing gaps stay free: a haircut fits into the colour's Einwirkzeit
SELECT tests.make_appointment(:c1, :color, :'lena', '2030-12-08 10:00+01') AS col \gset
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT is((SELECT count(*)::int FROM calsync.host_busy_time WHERE appointment_id = :col), 1,
          'a composite appointment has one busy row');
SELECT is((SELECT busy FROM calsync.host_busy_time WHERE appointment_id = :col),
          tstzmultirange(tstzrange('2030-12-08 10:00+01', '2030-12-08 10:30+01'), tstzrange('2030-12-08 11:30+01', '2030-12-08 12:00+01')),
          'a composite appointment is busy only in its 2 staff-required phases');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-08 10:45+01')$$, :c2, :cut, :'lena')),
          'ok', 'a booking inside the processing gap is accepted');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-08 10:15+01')$$, :c3, :cut, :'lena')),
          '23P01 host_busy_time_no_overlap', 'a booking over a staff-required phase is refused');

-- cancelling frees the time; moving into a taken slot is refused
UPDATE appointments SET status = 'cancelled' WHERE id = :a750;
SELECT is((SELECT count(*)::int FROM calsync.host_busy_time WHERE appointment_id = :a750), 0, 'cancelling frees the host');
SELECT tests.make_appointment(:c1, :cut, :'fabian_a', '2030-12-06 16:00+01') AS later \gset
SELECT is(tests.error_of(format($$UPDATE appointments SET starts_at = '2030-12-06 14:40+01', ends_at = '2030-12-06 15:10+01'
                                  WHERE id = %s$$, :later)),
          '23P01 host_busy_time_no_overlap', 'moving an appointment onto a taken time is refused');
UPDATE appointments SET starts_at = '2030-12-06 14:00+01', ends_at = '2030-12-06 14:30+01' WHERE id = :later;
SELECT is((SELECT busy FROM calsync.host_busy_time WHERE appointment_id = :later),
          tstzmultirange(tstzrange('2030-12-06 14:00+01', '2030-12-06 14:30+01')), 'a move into free time updates the busy time');

-- a moved composite appointment: its phases follow, its one row with them; the app's rewrite of the
-- unchanged phases writes nothing
UPDATE appointments SET starts_at = starts_at + interval '1 day', ends_at = ends_at + interval '1 day' WHERE id = :col;
SELECT is((SELECT busy FROM calsync.host_busy_time WHERE appointment_id = :col),
          tstzmultirange(tstzrange('2030-12-09 10:00+01', '2030-12-09 10:30+01'), tstzrange('2030-12-09 11:30+01', '2030-12-09 12:00+01')),
          'a moved composite appointment is busy in its moved phases');
SELECT ctid AS busy_version FROM calsync.host_busy_time WHERE appointment_id = :col \gset
UPDATE appointment_phases SET start_time = start_time, end_time = end_time WHERE appointment_id = :col;
SELECT is((SELECT ctid::text FROM calsync.host_busy_time WHERE appointment_id = :col), :'busy_version',
          'rewriting unchanged phases leaves the busy row alone');
-- a phase no longer needing staff frees its time; one of another appointment's phases moved in is refused
UPDATE appointment_phases SET staff_required = false WHERE appointment_id = :col AND sequence_order = 3;
SELECT is((SELECT busy FROM calsync.host_busy_time WHERE appointment_id = :col),
          tstzmultirange(tstzrange('2030-12-09 10:00+01', '2030-12-09 10:30+01')),
          'a phase that no longer needs staff frees its time');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, %L, '2030-12-09 10:15+01')$$, :c3, :cut, :'lena')),
          '23P01 host_busy_time_no_overlap', 'the phases that still need staff keep the host busy');

-- a staff row getting its Cal.com user joins that user's timeline
SELECT tests.make_appointment(:c2, :cut, :'temp', '2030-12-06 14:10+01') AS clash \gset
SELECT is(tests.error_of(format('UPDATE staff SET calcom_user_id = 1414768 WHERE id = %L', :'temp')),
          '23P01 host_busy_time_no_overlap', 'linking a staff row to a busy Cal.com user is refused');
SELECT is(tests.error_of(format('UPDATE staff SET calcom_user_id = 777 WHERE id = %L', :'temp')),
          'ok', 'linking it to a free Cal.com user re-keys its bookings');

SELECT * FROM finish();
