-- Rule: appointments_one_live_per_customer_slot.
SELECT plan(6);

SELECT tests.make_company() AS company \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS svc \gset
SELECT tests.make_service(:company, 'Bartpflege', 20) AS beard \gset
SELECT tests.make_customer(:company) AS hans \gset
SELECT tests.make_customer(:company, 'Petra Müller') AS petra \gset
SELECT tests.make_appointment(:hans, :svc, NULL, '2030-12-10 14:00+01') AS first \gset

SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, NULL, '2030-12-10 14:00+01')$$, :hans, :svc)),
          '23505 appointments_one_live_per_customer_slot',
          'a second live booking of one customer, start and service is refused (#753–#755)');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, NULL, '2030-12-10 14:00+01')$$, :petra, :svc)),
          'ok', 'another customer may book the same start and service');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, NULL, '2030-12-10 14:00+01')$$, :hans, :beard)),
          'ok', 'the same customer may book another service at the same start');
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, NULL, '2030-12-10 14:00+01', 'cancelled')$$, :hans, :svc)),
          'ok', 'a cancelled duplicate is allowed (history)');
UPDATE appointments SET status = 'no_show' WHERE id = :first;
SELECT is(tests.error_of(format($$SELECT tests.make_appointment(%s, %s, NULL, '2030-12-10 14:00+01')$$, :hans, :svc)),
          'ok', 'a no_show frees the slot for a new live booking');
SELECT is(tests.error_of(format('UPDATE appointments SET status = %L WHERE id = %s', 'confirmed', :first)),
          '23505 appointments_one_live_per_customer_slot', 'reviving the old booking onto a taken slot is refused');

SELECT * FROM finish();
