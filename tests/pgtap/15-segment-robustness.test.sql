-- Revision 0018: whatever a service's segments hold, deriving phases never crashes (segments_problem names
-- numbers beyond integer range, staff_required defaults to true, texts are cut); phases past timestamptz's end
-- are refused by appointment_phases_within_time_range; a booked simple service cannot become composite;
-- phases written under a savepoint with their appointment enqueue nothing of their own.
SELECT plan(40);

SELECT tests.make_company() AS company \gset
SELECT tests.make_staff(:company, 'Lena Wagner', 5001) AS lena \gset
SELECT tests.make_service(:company, 'Dauerwelle', 135, tests.dauerwelle_segments()) AS perm \gset
SELECT tests.make_service(:company, 'Herrenhaarschnitt', 30) AS cut \gset
SELECT tests.make_customer(:company) AS cust \gset
CREATE TEMP VIEW events AS SELECT aggregateid::bigint AS appointment_id, type, payload FROM calsync.outbox ORDER BY seq;

-- 1. numbers beyond integer range make the segments unusable, in words
SELECT is(calsync.segments_problem('[{"key":"A","durationMin":"99999999999"}]'),
          'segment A (?) has a duration beyond integer range', 'a numeric string beyond integer range is named');
SELECT is(calsync.segments_problem('[{"key":"A","durationMin":2147483648}]'),
          'segment A (?) has a duration beyond integer range', 'a JSON number one past integer''s maximum is named');
SELECT is(calsync.segments_problem('[{"key":"A","durationMin":2147483647}]'), NULL,
          'integer''s maximum itself is a duration (as before)');
SELECT is(calsync.segments_problem('[{"key":"A","durationMin":30,"order":1e12}]'),
          'segment A (?) has an order beyond integer range', 'an order beyond integer range is named');
SELECT is(calsync.segments_problem('[{"key":"A","duration":30,"gap_after":1e10}]'),
          'segment A (?) has a gap_after beyond integer range', 'a gap_after beyond integer range is named');
SELECT is(calsync.segments_problem('[{"key":"A","durationMin":2000000000},{"key":"B","duration":147483647,"gap_after":1}]'),
          'the segments last 2147483648 minutes in total, beyond integer range',
          'durations and gaps are summed in bigint: a total beyond integer range is named');
SELECT is(calsync.segment_number(jsonb_build_object('d', repeat('9', 200000)), 'd'), 2147483648::bigint,
          'a numeric string of 200,000 digits is read without a cast (no numeric overflow)');
SELECT is(calsync.segment_number('{"d":" 0000000000000000000000029.5\t"}', 'd'), 30::bigint,
          'leading zeros and ASCII whitespace are fine; rounded half up');
SELECT is(calsync.segment_number(jsonb_build_object('d', U&'\2003' || '30'), 'd'), NULL::bigint,
          'non-ASCII whitespace is no number (the numeric cast would refuse it)');
SELECT is((SELECT count(*)::int FROM calsync.derive_phases('[{"key":"A","durationMin":1e12}]')), 0,
          'derive_phases gives no phases for them, without an error');

SELECT tests.make_service(:company, 'Riesig', 60, '[{"key":"A","durationMin":"99999999999"}]') AS huge \gset
SELECT tests.make_appointment(:cust, :huge, NULL, '2031-06-02 10:00+02') AS huge_appt \gset
SELECT is(tests.error_of('SET CONSTRAINTS ALL IMMEDIATE'), 'ok', 'booking it commits (no 22003)');
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(format('SELECT calcom_sync_status::text, requires_manual_review, sync_error_code::text FROM appointments WHERE id = %s', :huge_appt),
                  $$VALUES ('failed', true, 'COMPOSITE_FAILURE')$$, 'and the booking is flagged for manual review');
SELECT is((SELECT count(*)::int FROM calsync.integrity_issues WHERE rule = 'appointments_composite_has_phases' AND row_id = :huge_appt),
          1, 'with an open integrity issue');
SELECT is(tests.error_of(format($$UPDATE services SET segments = '[{"key":"A","durationMin":1e12}]' WHERE id = %s$$, :perm)),
          'ok', 'an unbooked composite service takes any segments (services_keep_segments_while_booked does not trip)');
SELECT is(tests.error_of(format($$UPDATE services SET segments = '[{"key":"A","durationMin":2e12}]' WHERE id = %s$$, :huge)),
          '23514 services_keep_segments_while_booked', 'a booked one refuses them by name');
UPDATE services SET segments = tests.dauerwelle_segments() WHERE id = :perm;

-- 2. staff_required: boolean literals as PostgreSQL reads them, anything else the default (true)
SELECT results_eq(
    $$SELECT segment_key, staff_required FROM calsync.derive_phases('[
        {"key":"A","durationMin":5,"staff_required":"maybe"}, {"key":"B","durationMin":5,"staff_required":""},
        {"key":"C","durationMin":5,"staff_required":2}, {"key":"D","durationMin":5,"staff_required":[true]},
        {"key":"E","durationMin":5,"staff_required":false}, {"key":"F","durationMin":5,"staff_required":" No "},
        {"key":"G","durationMin":5,"staff_required":"of"}, {"key":"H","durationMin":5,"staff_required":0},
        {"key":"I","durationMin":5,"staff_required":null}, {"key":"J","durationMin":5,"staff_required":"o"}]')$$,
    $$VALUES ('A', true), ('B', true), ('C', true), ('D', true), ('E', false), ('F', false), ('G', false), ('H', false),
             ('I', true), ('J', true)$$,
    'no boolean literal counts as true; false, no, of(f), 0 are false, as boolin reads them');
SELECT tests.make_service(:company, 'Vielleicht', 30, '[{"key":"A","durationMin":30,"staff_required":"maybe"}]') AS maybe \gset
SELECT tests.make_appointment(:cust, :maybe, NULL, '2031-06-03 10:00+02') AS maybe_appt \gset
SELECT is(tests.error_of('SET CONSTRAINTS ALL IMMEDIATE'), 'ok', 'booking a segment with an odd staff flag commits (no 22P02)');
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(format('SELECT staff_required FROM appointment_phases WHERE appointment_id = %s', :maybe_appt),
                  $$VALUES (true)$$, 'and its phase needs staff');

-- 3. texts longer than the phase columns are cut
SELECT results_eq(
    format($$SELECT length(segment_key), right(segment_key, 4), length(segment_name), right(segment_name, 14)
             FROM calsync.derive_phases(%L)$$,
           jsonb_build_array(jsonb_build_object('key', repeat('K', 60), 'name', repeat('N', 300), 'duration', 30, 'gap_after', 10))),
    $$VALUES (50, 'KKKK', 255, repeat('N', 14)), (50, '_gap', 255, ' (Einwirkzeit)')$$,
    'a key is cut to 50 characters and a name to 255; a gap keeps its _gap and (Einwirkzeit)');
SELECT is((SELECT segment_key FROM calsync.derive_phases('[{"key":"ABC","duration":30,"gap_after":10}]') WHERE sequence_order = 2),
          'ABC_gap', 'short keys are as before');
SELECT tests.make_service(:company, 'Lang', 30, jsonb_build_array(jsonb_build_object('key', repeat('K', 47), 'duration', 30, 'gap_after', 10))) AS long \gset
SELECT tests.make_appointment(:cust, :long, NULL, '2031-06-04 10:00+02') AS long_appt \gset
SELECT is(tests.error_of('SET CONSTRAINTS ALL IMMEDIATE'), 'ok', 'booking a service with long keys commits (no 22001)');
SET CONSTRAINTS ALL DEFERRED;
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :long_appt), 2, 'and gets its two phases');

-- 4. phases past timestamptz's end: refused by name, at commit and on a move
SELECT ok(calsync.phase_fits_time_range('294276-12-31 23:00+00', 0, 59), 'a phase ending in the last hour of timestamptz fits');
SELECT ok(NOT calsync.phase_fits_time_range('294276-12-31 23:00+00', 0, 60), 'one ending at 294277-01-01 does not');
SELECT ok(NOT calsync.phase_fits_time_range('294270-01-01 00:00+00', 2147483647, 2147483647),
          'the check never overflows (integer offsets added in numeric)');
SELECT ok(calsync.phase_fits_time_range('infinity', 0, 60), 'an infinite start stays infinite (as before)');
SELECT is(tests.error_of(format($q$DO $do$ BEGIN PERFORM tests.make_appointment(%s, %s, NULL, '294276-12-31 22:00+00', 'confirmed', 30);
                                  SET CONSTRAINTS ALL IMMEDIATE; END $do$$q$, :cust, :perm)),
          '23514 appointment_phases_within_time_range', 'a Dauerwelle whose phases would end after 294276-12-31 is refused at commit, by name');
SELECT matches(tests.message_of(format($q$DO $do$ BEGIN PERFORM tests.make_appointment(%s, %s, NULL, '294276-12-31 22:00+00', 'confirmed', 30);
                                         SET CONSTRAINTS ALL IMMEDIATE; END $do$$q$, :cust, :perm)),
               'would end after timestamptz''s last instant', 'the message states the rule');
SELECT tests.make_appointment(:cust, :perm, NULL, '294276-12-31 20:00+00') AS late \gset
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT is((SELECT count(*)::int FROM appointment_phases WHERE appointment_id = :late), 6, 'at 20:00 its phases still fit');
SELECT is(tests.error_of(format($$UPDATE appointments SET starts_at = starts_at + interval '3 hours', ends_at = ends_at + interval '1 hour' WHERE id = %s$$, :late)),
          '23514 appointment_phases_within_time_range', 'moving it 3 hours later is refused by name (no 22008)');

-- 6. a booked simple service cannot become composite
SELECT tests.make_appointment(:cust, :cut, :'lena', '2031-06-05 10:00+02') AS cut_appt \gset
SELECT is(tests.error_of(format('UPDATE services SET composite = true, segments = tests.dauerwelle_segments() WHERE id = %s', :cut)),
          '23514 services_keep_segments_while_booked', 'a simple service with an upcoming booking cannot turn composite');
SELECT matches(tests.message_of(format('UPDATE services SET composite = true, segments = tests.dauerwelle_segments() WHERE id = %s', :cut)),
               'is simple and booked by 1 upcoming appointment\(s\) \(first: #[0-9]+\): it cannot become composite',
               'the message names the bookings and the rule');
SELECT is(tests.error_of(format($$UPDATE services SET segments = '[{"key":"A","durationMin":30}]' WHERE id = %s$$, :cut)),
          'ok', 'its segments may change while it stays simple');
UPDATE appointments SET starts_at = now() - interval '2 days', ends_at = now() - interval '2 days' + interval '30 minutes' WHERE id = :cut_appt;
SELECT is(tests.error_of(format('UPDATE services SET composite = true, segments = tests.dauerwelle_segments() WHERE id = %s', :cut)),
          'ok', 'with only past bookings it may turn composite');

-- 7. phases written with their appointment under a savepoint enqueue nothing of their own
SELECT ok(NOT calsync.written_by_this_transaction((SELECT xmin FROM alembic_version)), 'a row committed before is not ours');
SAVEPOINT booking;
SELECT tests.make_appointment(:cust, :perm, :'lena', '2031-06-06 10:00+02') AS sp \gset
RELEASE booking;
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(format('SELECT type::text FROM events WHERE appointment_id = %s', :sp), $$VALUES ('create')$$,
                  'a composite booked under a released savepoint enqueues its create only');
SELECT ok(calsync.written_by_this_transaction((SELECT xmin FROM appointments WHERE id = :sp)),
          'its row, written by a released subtransaction, is ours');
SAVEPOINT outer_sp;
SAVEPOINT inner_sp;
UPDATE appointments SET starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour' WHERE id = :sp;
SELECT ok(calsync.written_by_this_transaction((SELECT xmin FROM appointments WHERE id = :sp)),
          'a row written two savepoints deep is ours');
RELEASE inner_sp;
RELEASE outer_sp;
SELECT results_eq(format('SELECT type::text FROM events WHERE appointment_id = %s', :sp), $$VALUES ('create'), ('reschedule')$$,
                  'a move under nested savepoints enqueues its reschedule, and its shifted phases nothing of their own');
SELECT is((SELECT count(*)::int FROM events WHERE payload ? 'phases'), 0, 'no event says phases changed');

SELECT * FROM finish();
