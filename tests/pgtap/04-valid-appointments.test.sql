-- Rules: appointments_service_required, _ends_after_start, _status_known, _calcom_sync_status_known,
-- appointments_composite_matches_service.
SELECT plan(13);

SELECT tests.make_company() AS company \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS svc \gset
SELECT tests.make_service(:company, 'Dauerwelle', 135, tests.dauerwelle_segments()) AS perm \gset
SELECT tests.make_customer(:company) AS cust \gset

SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status)
                                  VALUES (%s, %s, %s, '2030-01-07 10:00+01', '2030-01-07 10:30+01', 'confirmed')$$,
                                 :company, :cust, :svc)),
          'ok', 'a valid appointment is accepted');
SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, starts_at, ends_at, status)
                                  VALUES (%s, %s, '2030-01-07 11:00+01', '2030-01-07 11:30+01', 'confirmed')$$, :company, :cust)),
          '23514 appointments_service_required', 'a live appointment without a service is refused (#15)');
SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, starts_at, ends_at, status)
                                  VALUES (%s, %s, '2030-01-07 11:00+01', '2030-01-07 11:30+01', 'cancelled')$$, :company, :cust)),
          'ok', 'a cancelled appointment without a service is kept (history)');
SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status)
                                  VALUES (%s, %s, %s, '2030-01-07 12:00+01', '2030-01-07 12:00+01', 'confirmed')$$,
                                 :company, :cust, :svc)),
          '23514 appointments_ends_after_start', 'ends_at equal to starts_at is refused');
SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, service_id, starts_at, status)
                                  VALUES (%s, %s, %s, '2030-01-07 12:00+01', 'confirmed')$$, :company, :cust, :svc)),
          '23514 appointments_ends_after_start', 'a live appointment without ends_at is refused');
SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status)
                                  VALUES (%s, %s, %s, '2030-01-07 13:00+01', '2030-01-07 13:30+01', 'done')$$,
                                 :company, :cust, :svc)),
          '23514 appointments_status_known', 'an unknown status is refused');
SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status,
                                                             calcom_sync_status)
                                  VALUES (%s, %s, %s, '2030-01-07 13:00+01', '2030-01-07 13:30+01', 'confirmed',
                                          'manual_review_required')$$, :company, :cust, :svc)),
          '23514 appointments_calcom_sync_status_known', 'the saga''s manual_review_required sync status is refused');
SELECT is(tests.error_of(format($$INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status,
                                                             calcom_sync_status)
                                  VALUES (%s, %s, %s, '2030-01-07 14:00+01', '2030-01-07 14:30+01', 'in_progress',
                                          'verification_pending')$$, :company, :cust, :svc)),
          'ok', 'every status of the app''s sets is accepted');

SELECT tests.make_appointment(:cust, :perm, NULL, '2030-02-03 09:00+01') AS perm_appt \gset
SELECT ok((SELECT is_composite FROM appointments WHERE id = :perm_appt),
          'is_composite is taken from the service on insert (the app left it false)');
SELECT is(tests.error_of(format('UPDATE appointments SET is_composite = false WHERE id = %s', :perm_appt)),
          '23514 appointments_composite_matches_service', 'an update contradicting the service is refused');
SELECT matches(tests.message_of(format('UPDATE appointments SET is_composite = false WHERE id = %s', :perm_appt)),
               'contradicts service \d+ \(Dauerwelle\)', 'the message names the service');
UPDATE appointments SET service_id = :svc, ends_at = starts_at + interval '30 minutes' WHERE id = :perm_appt;
SELECT ok(NOT (SELECT is_composite FROM appointments WHERE id = :perm_appt), 'changing the service re-derives is_composite');
SELECT col_type_is('public', 'appointments', 'sync_error_message', 'text', 'sync_error_message has no length limit');

SELECT * FROM finish();
