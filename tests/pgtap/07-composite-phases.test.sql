-- Rules: appointments_composite_has_phases (deferred), appointments_phases_follow_appointment,
-- appointment_phases_one_per_sequence, services_keep_segments_while_booked.
SELECT plan(21);

SELECT tests.make_company() AS company \gset
SELECT tests.make_service(:company, 'Dauerwelle', 135, tests.dauerwelle_segments()) AS perm \gset
SELECT tests.make_service(:company, 'Ansatz + Längenausgleich', 155, '[
   {"key":"A","name":"Ansatz färben","duration":40,"gap_after":30,"preferSameStaff":true},
   {"key":"B","name":"Längenausgleich","duration":15,"gap_after":0},
   {"key":"C","name":"Schneiden","duration":40},
   {"key":"D","name":"Föhnen","duration":30}]') AS legacy \gset
SELECT tests.make_service(:company, 'Kaputt', 60, '[{"key":"A","name":"ohne Dauer"}]') AS broken \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS cut \gset
SELECT tests.make_customer(:company) AS cust \gset

-- the app's algorithm, as a pure function
SELECT results_eq(
    $$SELECT sequence_order, phase_type, segment_key, start_offset_minutes, duration_minutes, staff_required
      FROM calsync.derive_phases(tests.dauerwelle_segments())$$,
    $$VALUES (1, 'initial', 'A', 0, 50, true), (2, 'processing', 'A_gap', 50, 15, false), (3, 'final', 'B', 65, 5, true),
             (4, 'processing', 'B_gap', 70, 10, false), (5, 'final', 'C', 80, 15, true), (6, 'final', 'D', 95, 40, true)$$,
    'Dauerwelle: 6 phases, 4 need staff, offsets accumulate, sequence from 1');
SELECT results_eq(
    $$SELECT segment_key, start_offset_minutes, duration_minutes, staff_required
      FROM calsync.derive_phases((SELECT segments FROM services WHERE name = 'Ansatz + Längenausgleich'))$$,
    $$VALUES ('A', 0, 40, true), ('A_gap', 40, 30, false), ('B', 70, 15, true), ('C', 85, 40, true), ('D', 125, 30, true)$$,
    'legacy shape: duration is read and gap_after becomes a processing phase (the app ignored both)');
SELECT results_eq(
    $$SELECT segment_key FROM calsync.derive_phases('[{"key":"Z","durationMin":5,"order":3},{"key":"Y","durationMin":5,"order":1},{"key":"X","durationMin":5}]')$$,
    $$VALUES ('X'), ('Y'), ('Z')$$, 'segments are sorted by order, a missing order counting as 0');
SELECT is(calsync.segments_problem('[]'), 'the service''s segments are empty', 'empty segments are unusable');
SELECT is(calsync.segments_problem(NULL), 'the service has no segments', 'NULL segments are unusable');

-- derived at commit
SELECT tests.make_appointment(:cust, :perm, NULL, '2030-03-04 10:00+01') AS a \gset
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :a), 0, 'no phases before commit');
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :a), 6, 'at commit a Dauerwelle gets its 6 phases');
SELECT is((SELECT start_time FROM appointment_phases WHERE appointment_id = :a AND sequence_order = 3),
          '2030-03-04 11:05+01'::timestamptz, 'phase times are start plus offset');

-- phases the app wrote itself are kept
SELECT tests.make_appointment(tests.make_customer(:company, 'Sabine Koch'), :perm, NULL, '2030-03-05 10:00+01') AS own \gset
INSERT INTO appointment_phases (appointment_id, phase_type, segment_key, sequence_order, duration_minutes, start_time, end_time)
VALUES (:own, 'initial', 'A', 1, 135, '2030-03-05 10:00+01', '2030-03-05 12:15+01');
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :own), 1,
          'an appointment that already has phases is left alone (like #667 and #673)');
SELECT is(tests.error_of(format($$INSERT INTO appointment_phases (appointment_id, phase_type, sequence_order, duration_minutes,
                                  start_time, end_time) VALUES (%s, 'final', 1, 10, now(), now())$$, :own)),
          '23505 appointment_phases_one_per_sequence', 'a second phase with the same sequence_order is refused (12 instead of 6)');
SELECT is(tests.error_of(format($$INSERT INTO appointment_phases (appointment_id, phase_type, duration_minutes,
                                  start_time, end_time) VALUES (%s, 'final', 10, now(), now())$$, :own)),
          '23514 appointment_phases_sequence_required', 'a phase without sequence_order is refused');

-- unusable segments: flagged, not synced
SELECT tests.make_appointment(:cust, :broken, NULL, '2030-03-06 10:00+01') AS bad \gset
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(
    format('SELECT calcom_sync_status, requires_manual_review, sync_error_code FROM appointments WHERE id = %s', :bad),
    $$VALUES ('failed'::varchar, true, 'COMPOSITE_FAILURE'::varchar)$$,
    'a composite with unusable segments is flagged: failed, manual review, COMPOSITE_FAILURE');
SELECT is((SELECT detail FROM calsync.integrity_issues WHERE rule = 'appointments_composite_has_phases' AND row_id = :bad),
          format('no phases could be derived: segment A (ohne Dauer) has no positive duration (service %s, Kaputt)', :broken),
          'and listed in integrity_issues with the reason');

-- reschedule shifts, service change re-derives (old phases superseded, not lost)
UPDATE appointments SET starts_at = starts_at + interval '1 day', ends_at = ends_at + interval '1 day' WHERE id = :a;
SELECT is((SELECT start_time FROM appointment_phases WHERE appointment_id = :a AND sequence_order = 3),
          '2030-03-05 11:05+01'::timestamptz, 'a reschedule shifts the phases');
UPDATE appointment_phases SET calcom_booking_uid = 'uid-a-1' WHERE appointment_id = :a AND sequence_order = 1;
UPDATE appointments SET service_id = :legacy, ends_at = starts_at + interval '155 minutes' WHERE id = :a;
SELECT is((SELECT count(*)::int FROM calsync.superseded_phases WHERE appointment_id = :a), 6,
          'a service change supersedes the old phases');
SELECT is((SELECT calcom_booking_uid::text FROM calsync.superseded_phases WHERE appointment_id = :a AND sequence_order = 1),
          'uid-a-1', 'with their Cal.com bookings, which must be cancelled');
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :a), 5, 'and the new service''s phases are derived at commit');
UPDATE appointments SET service_id = :cut, ends_at = starts_at + interval '30 minutes' WHERE id = :a;
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :a), 0, 'a simple service has no phases');

-- segments can't be wiped while booked
SELECT is(tests.error_of(format('UPDATE services SET segments = NULL WHERE id = %s', :perm)),
          '23514 services_keep_segments_while_booked', 'an import wiping a booked composite service''s segments is refused');
SELECT is(tests.error_of(format('UPDATE services SET composite = false WHERE id = %s', :perm)),
          '23514 services_keep_segments_while_booked', 'switching composite off while booked is refused');
SELECT is(tests.error_of(format('UPDATE services SET segments = %L WHERE id = %s',
                                 '[{"key":"A","durationMin":135}]', :perm)),
          'ok', 'replacing the segments with usable ones is allowed');

SELECT * FROM finish();
