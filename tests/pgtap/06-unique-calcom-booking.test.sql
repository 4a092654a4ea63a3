-- Rules: one live appointment (and one phase) per Cal.com booking.
SELECT plan(7);

SELECT tests.make_company() AS company \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS svc \gset
SELECT tests.make_customer(:company) AS hans \gset
SELECT tests.make_appointment(:hans, :svc, NULL, '2030-12-10 14:00+01') AS a753 \gset
SELECT tests.make_appointment(:hans, :svc, NULL, '2030-12-10 15:00+01') AS a754 \gset
UPDATE appointments SET calcom_booking_id = 13060966, calcom_v2_booking_uid = 'uid-13060966' WHERE id = :a753;

SELECT is(tests.error_of(format('UPDATE appointments SET calcom_booking_id = 13060966 WHERE id = %s', :a754)),
          '23505 appointments_one_live_per_calcom_booking_id', 'a second live appointment on one Cal.com booking id is refused');
SELECT is(tests.error_of(format($$UPDATE appointments SET calcom_v2_booking_uid = 'uid-13060966' WHERE id = %s$$, :a754)),
          '23505 appointments_one_live_per_calcom_booking_uid', 'a second live appointment on one booking uid is refused');
SELECT is(tests.error_of(format($$UPDATE appointments SET calcom_v2_booking_id = 'v2-1' WHERE id = %s$$, :a753)), 'ok',
          'a v2 id is accepted');
SELECT is(tests.error_of(format($$UPDATE appointments SET calcom_v2_booking_id = 'v2-1' WHERE id = %s$$, :a754)),
          '23505 appointments_calcom_v2_booking_id_unique', 'calcom_v2_booking_id stays unique (the app''s own rule)');
UPDATE appointments SET status = 'cancelled' WHERE id = :a753;
SELECT is(tests.error_of(format('UPDATE appointments SET calcom_booking_id = 13060966 WHERE id = %s', :a754)), 'ok',
          'once cancelled, the old row no longer holds the booking');

SELECT tests.make_service(:company, 'Dauerwelle', 135, tests.dauerwelle_segments()) AS perm \gset
SELECT tests.make_appointment(:hans, :perm, NULL, '2030-12-11 09:00+01') AS p1 \gset
SET CONSTRAINTS ALL IMMEDIATE;
UPDATE appointment_phases SET calcom_booking_uid = 'phase-uid-1' WHERE appointment_id = :p1 AND sequence_order = 1;
SELECT is(tests.error_of(format($$UPDATE appointment_phases SET calcom_booking_uid = 'phase-uid-1'
                                  WHERE appointment_id = %s AND sequence_order = 3$$, :p1)),
          '23505 appointment_phases_one_per_calcom_booking_uid', 'two phases cannot share a Cal.com booking uid');
UPDATE appointment_phases SET calcom_booking_id = 99 WHERE appointment_id = :p1 AND sequence_order = 1;
SELECT is(tests.error_of(format($$UPDATE appointment_phases SET calcom_booking_id = 99
                                  WHERE appointment_id = %s AND sequence_order = 3$$, :p1)),
          '23505 appointment_phases_one_per_calcom_booking_id', 'two phases cannot share a Cal.com booking id');

SELECT * FROM finish();
