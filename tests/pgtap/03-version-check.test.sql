-- Rule: optimistic locking on appointments (appointments_version_check).
SELECT plan(6);

SELECT tests.make_company() AS company \gset
SELECT tests.make_service(:company, 'Damenhaarschnitt', 60) AS svc \gset
SELECT tests.make_staff(:company, 'Lena Wagner', 5001) AS staff \gset
SELECT tests.make_customer(:company) AS cust \gset
SELECT tests.make_appointment(:cust, :svc, :'staff', '2030-01-07 10:00+01') AS appt \gset

SELECT is((SELECT version FROM appointments WHERE id = :appt), 1, 'a new appointment is at version 1');
UPDATE appointments SET status = 'scheduled' WHERE id = :appt;
SELECT is((SELECT version FROM appointments WHERE id = :appt), 2, 'an update without a version increments it');
UPDATE appointments SET status = 'confirmed', version = 2 WHERE id = :appt;
SELECT is((SELECT version FROM appointments WHERE id = :appt), 3, 'an update supplying the current version succeeds and increments it');
SELECT is(tests.error_of(format('UPDATE appointments SET status = %L, version = 2 WHERE id = %s', 'pending', :appt)),
          '40001 appointments_version_check', 'an update supplying a stale version is refused with 40001');
SELECT matches(tests.message_of(format('UPDATE appointments SET version = 1 WHERE id = %s', :appt)),
               'changed by someone else: your update is based on version 1, the row is at version 3',
               'the message names both versions');
SELECT is((SELECT status::text FROM appointments WHERE id = :appt), 'confirmed', 'the refused update changed nothing');

SELECT * FROM finish();
