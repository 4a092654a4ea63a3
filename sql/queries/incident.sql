-- The incident of 2025-11-24 (shared/seed), as data, loaded on revision 0001 by the demo next to a
-- generated salon. Salon "AskPro Studio" (company 2) with the app's own ids: 23 failed syncs (10 OTHER
-- with cut HTTP 400 errors, 4 DOUBLE_BOOKING, 4 COMPOSITE_FAILURE, 3 PHASE_ERROR, 2 MISSING_CONTACT),
-- 33 anonymous-phone customers without an e-mail, composites with and without phases, Hans Schuster's
-- duplicates, an appointment without a service, past appointments, and one person (Fabian Spitzer) on
-- two staff rows booked twice at once. %(anchor)s is the demo's "now"; times are Berlin local. Runs in the
-- transaction of the generated salon (worker/devtools/datagen.py), whose services and phase template it reuses.

-- name: incident_dataset
CREATE TEMP TABLE _d (n int, t timestamptz) ON COMMIT DROP;
INSERT INTO _d SELECT n, (date_trunc('day', %(anchor)s::timestamptz AT TIME ZONE 'Europe/Berlin') + make_interval(days => n))
                         AT TIME ZONE 'Europe/Berlin'
FROM generate_series(-30, 40) AS n;

INSERT INTO companies (id, name) VALUES (2, 'AskPro Studio');
INSERT INTO branches (id, company_id, name) VALUES ('b1b1b1b1-0000-4000-8000-000000000002', 2, 'Friseur Innenstadt');
INSERT INTO staff (id, company_id, branch_id, name, email, calcom_user_id) VALUES
 ('9f47fda1-977c-47aa-a87a-0e8cbeaeb119', 2, 'b1b1b1b1-0000-4000-8000-000000000002', 'Fabian Spitzer', 'fabian@askpro.example', 1414768),
 ('6ad1fa25-2b9f-4a46-8c33-1c1d0a5a7a6e', 2, 'b1b1b1b1-0000-4000-8000-000000000002', 'Fabian Spitzer', 'f.spitzer@askpro.example', 1414768),
 ('5c0ffee0-1111-4222-8333-444455556666', 2, 'b1b1b1b1-0000-4000-8000-000000000002', 'Lena Wagner', 'lena@askpro.example', 1346500),
 ('5c0ffee0-1111-4222-8333-444455557777', 2, 'b1b1b1b1-0000-4000-8000-000000000002', 'Mia Richter', 'mia@askpro.example', 1346501);

INSERT INTO services (id, company_id, name, duration_minutes, composite, segments, calcom_event_type_id)
SELECT 441, 2, 'Dauerwelle', 135, true, segments, 3719867 FROM services WHERE id = 7
UNION ALL SELECT 440, 2, 'Ansatzfärbung', 130, true, segments, 3719866 FROM services WHERE id = 8
UNION ALL SELECT 442, 2, 'Ansatz + Längenausgleich', 155, true, segments, 3719868 FROM services WHERE id = 9
UNION ALL SELECT 444, 2, 'Komplette Umfärbung', 165, true, segments, 3719870 FROM services WHERE id = 10
UNION ALL SELECT 450, 2, 'Herrenhaarschnitt', 30, false, NULL, 3719880
UNION ALL SELECT 451, 2, 'Damenhaarschnitt', 60, false, NULL, 3719881;
INSERT INTO calcom_event_map (service_id, segment_key, staff_id, event_type_id, child_event_type_id)
SELECT s.id, e.seg->>'key', st.id, 3800000 + s.id * 10 + e.idx, 3900000 + (s.id * 10 + e.idx) * 10 + st.n
FROM services s
CROSS JOIN LATERAL jsonb_array_elements(s.segments) WITH ORDINALITY AS e(seg, idx)
CROSS JOIN (SELECT id, row_number() OVER (ORDER BY email) AS n FROM staff WHERE company_id = 2) AS st
WHERE s.company_id = 2 AND s.composite AND coalesce(e.seg->>'type', 'active') <> 'processing';

-- 33 anonymous callers without an e-mail (the voice agent's customers), Hans Schuster, and regulars
INSERT INTO customers (id, company_id, name, email, phone, source, created_at)
SELECT 500 + i, 2, (ARRAY['Anruf', 'Kunde', 'Gast'])[1 + i %% 3] || ' ' || i, CASE WHEN i = 2 THEN '' END,
       'anonymous_' || (1763400000 + i * 3917) || '_' || substr(md5('anon' || i), 1, 8), 'retell_webhook_anonymous',
       %(anchor)s::timestamptz - make_interval(days => 20 - i %% 15)
FROM generate_series(1, 33) AS i;
INSERT INTO customers (id, company_id, name, email, phone, source) VALUES
 (600, 2, 'Hans Schuster', 'hans.schuster@mail.example', '+4915112340600', 'retell_webhook');
INSERT INTO customers (id, company_id, name, email, phone, source)
SELECT 600 + i, 2, 'Stammkunde ' || i, 'stamm' || i || '@mail.example', '+49151123406' || lpad(i::text, 2, '0'), 'manual'
FROM generate_series(1, 60) AS i;

-- helper: an appointment of the incident company
CREATE FUNCTION pg_temp.appt(p_id bigint, p_customer bigint, p_service bigint, p_staff uuid, p_start timestamptz,
                             p_status text, p_sync text, p_message text, p_attempt timestamptz,
                             p_booking bigint DEFAULT NULL, p_uid text DEFAULT NULL, p_v2 text DEFAULT NULL)
RETURNS void LANGUAGE sql AS $f$
    INSERT INTO appointments (id, company_id, branch_id, customer_id, service_id, staff_id, starts_at, ends_at, status,
                              source, sync_origin, calcom_booking_id, calcom_v2_booking_id, calcom_v2_booking_uid,
                              calcom_sync_status, sync_error_message, sync_error_code, sync_attempt_count,
                              last_sync_attempt_at, requires_manual_review, manual_review_flagged_at, is_composite,
                              created_at, updated_at)
    SELECT p_id, 2, 'b1b1b1b1-0000-4000-8000-000000000002', p_customer, p_service, p_staff, p_start,
           p_start + make_interval(mins => coalesce((SELECT duration_minutes FROM services WHERE id = p_service), 45)),
           p_status, 'retell_phone', 'retell', p_booking, p_v2, p_uid, p_sync, p_message,
           CASE WHEN p_sync = 'failed' THEN 'HTTP_400' END, CASE WHEN p_sync = 'failed' THEN 3 ELSE 1 END,
           p_attempt, p_sync = 'failed', CASE WHEN p_sync = 'failed' THEN p_attempt + interval '40 seconds' END,
           coalesce((SELECT composite FROM services WHERE id = p_service), false),
           least(p_attempt, p_start) - interval '1 minute', p_attempt
$f$;
-- The app's error column cut Cal.com's answers at 255 characters; the reason came after the cut.
CREATE FUNCTION pg_temp.cut(p_reason text) RETURNS text LANGUAGE sql AS $f$
    SELECT left('Cal.com API error: {"status":"error","timestamp":"2025-11-22T15:04:11.214Z","path":"/v2/bookings",'
                || '"error":{"code":"BadRequestException","message":"bookingFieldsResponses property is wrong, responses '
                || 'property is wrong,attendee property is wrong, attendee.timeZone property is wrong ... ' || p_reason, 255)
$f$;

SELECT pg_temp.appt(15, 601, NULL, '5c0ffee0-1111-4222-8333-444455556666', (SELECT t FROM _d WHERE n = 5) + interval '10 hours',
                    'confirmed', 'failed', 'Cal.com API error: service not found', %(anchor)s::timestamptz - interval '3 days');
-- OTHER: eight past appointments whose cut errors hid "Attempting to book a meeting in the past.", and one
-- whose Cal.com had a bad moment (a 500 the app stored as an error)
SELECT pg_temp.appt(x.id, 602 + x.k, 451, '5c0ffee0-1111-4222-8333-444455557777',
                    (SELECT t FROM _d WHERE n = -x.k - 2) + interval '9 hours' + make_interval(hours => x.k %% 6),
                    'confirmed', 'failed', pg_temp.cut('Attempting to book a meeting in the past.'),
                    %(anchor)s::timestamptz - CASE WHEN x.k < 4 THEN interval '2 days' ELSE interval '3 hours' END + make_interval(mins => x.k))
FROM (VALUES (661, 0), (662, 1), (663, 2), (676, 3), (703, 4), (705, 5), (708, 6), (735, 7)) AS x(id, k);
SELECT pg_temp.appt(745, 612, 450, '5c0ffee0-1111-4222-8333-444455557777', (SELECT t FROM _d WHERE n = 9) + interval '11 hours',
                    'confirmed', 'failed', pg_temp.cut('There was an error, please try again later.'),
                    %(anchor)s::timestamptz - interval '2 hours');
-- DOUBLE_BOOKING: Hans Schuster, #751 at 14:00 on Fabian's first staff row (same time as #750 on his second
-- row), and #753–#755 three times at one slot on one Cal.com booking (13060966)
SELECT pg_temp.appt(751, 600, 450, '9f47fda1-977c-47aa-a87a-0e8cbeaeb119', (SELECT t FROM _d WHERE n = 12) + interval '14 hours',
                    'confirmed', 'failed', pg_temp.cut('User either already has booking at this time or is not available'),
                    %(anchor)s::timestamptz - interval '5 hours');
SELECT pg_temp.appt(x.id, 600, 451, '5c0ffee0-1111-4222-8333-444455556666', (SELECT t FROM _d WHERE n = 16) + interval '14 hours',
                    'confirmed', CASE WHEN x.id = 753 THEN 'failed' ELSE 'failed' END, pg_temp.cut('booking_conflict_error'),
                    %(anchor)s::timestamptz - interval '4 hours' + make_interval(mins => x.id - 753), 13060966,
                    CASE WHEN x.id = 753 THEN 'kmXyq3Vt8aLgq2RrYc3sWd' END, CASE WHEN x.id = 753 THEN '13060966' END)
FROM (VALUES (753), (754), (755)) AS x(id);
-- COMPOSITE_FAILURE: three composites saved without phases (#664, #700 in the past; #750 upcoming, on
-- Fabian's second staff row, overlapping #751), and #740 with phases but no staff
SELECT pg_temp.appt(664, 615, 441, '5c0ffee0-1111-4222-8333-444455556666', (SELECT t FROM _d WHERE n = -13) + interval '10 hours',
                    'confirmed', 'failed', 'Cal.com API error: no active phases (staff_required=true)', %(anchor)s::timestamptz - interval '26 hours');
SELECT pg_temp.appt(700, 616, 442, '5c0ffee0-1111-4222-8333-444455557777', (SELECT t FROM _d WHERE n = -7) + interval '9 hours',
                    'confirmed', 'failed', 'Cal.com API error: no active phases (staff_required=true)', %(anchor)s::timestamptz - interval '6 hours');
SELECT pg_temp.appt(750, 617, 441, '6ad1fa25-2b9f-4a46-8c33-1c1d0a5a7a6e', (SELECT t FROM _d WHERE n = 12) + interval '14 hours',
                    'confirmed', 'failed', 'Cal.com API error: no active phases (staff_required=true)', %(anchor)s::timestamptz - interval '5 hours');
SELECT pg_temp.appt(740, 618, 441, NULL, (SELECT t FROM _d WHERE n = 20) + interval '10 hours',
                    'confirmed', 'failed', 'Cal.com API error: no host for the phases', %(anchor)s::timestamptz - interval '7 hours');
-- PHASE_ERROR: #667 with its 6 phases twice (the two observers), #673 with phases missing segment fields,
-- #741 with phases left at the old time after a reschedule
SELECT pg_temp.appt(667, 619, 441, '5c0ffee0-1111-4222-8333-444455557777', (SELECT t FROM _d WHERE n = 14) + interval '9 hours',
                    'confirmed', 'failed', pg_temp.cut('Invalid phase data'), %(anchor)s::timestamptz - interval '8 hours');
SELECT pg_temp.appt(673, 620, 440, '5c0ffee0-1111-4222-8333-444455556666', (SELECT t FROM _d WHERE n = 15) + interval '9 hours',
                    'confirmed', 'failed', pg_temp.cut('Invalid phase data'), %(anchor)s::timestamptz - interval '9 hours');
SELECT pg_temp.appt(741, 621, 444, '5c0ffee0-1111-4222-8333-444455557777', (SELECT t FROM _d WHERE n = 18) + interval '13 hours',
                    'confirmed', 'failed', pg_temp.cut('Invalid phase data'), %(anchor)s::timestamptz - interval '10 hours');
-- MISSING_CONTACT: two anonymous callers' bookings
SELECT pg_temp.appt(749, 501, 450, '5c0ffee0-1111-4222-8333-444455557777', (SELECT t FROM _d WHERE n = 10) + interval '15 hours',
                    'confirmed', 'failed', 'Cal.com API error: attendee email or phone property is wrong', %(anchor)s::timestamptz - interval '1 hour');
SELECT pg_temp.appt(744, 502, 450, '5c0ffee0-1111-4222-8333-444455556666', (SELECT t FROM _d WHERE n = 11) + interval '16 hours',
                    'confirmed', 'failed', 'Cal.com API error: attendee email or phone property is wrong', %(anchor)s::timestamptz - interval '90 minutes');

-- phases: derived for #740 (no staff) and #667 (twice), broken for #673, out of step for #741
INSERT INTO appointment_phases (appointment_id, phase_type, segment_name, segment_key, sequence_order, start_offset_minutes,
                                duration_minutes, staff_required, start_time, end_time, calcom_sync_status)
SELECT a.id, d.phase_type, d.segment_name, CASE WHEN a.id = 673 THEN NULL ELSE d.segment_key END,
       CASE WHEN a.id = 673 THEN NULL ELSE d.sequence_order END, d.start_offset_minutes, d.duration_minutes,
       d.staff_required,
       a.starts_at - CASE WHEN a.id = 741 THEN interval '1 day' ELSE interval '0' END + make_interval(mins => d.start_offset_minutes),
       a.starts_at - CASE WHEN a.id = 741 THEN interval '1 day' ELSE interval '0' END
           + make_interval(mins => d.start_offset_minutes + d.duration_minutes), 'failed'
FROM appointments a
-- the phases the app's algorithm makes (datagen_templates' _phase_template, same transaction)
JOIN _phase_template d ON d.slot = CASE a.service_id WHEN 441 THEN 7 WHEN 440 THEN 8 WHEN 444 THEN 10 END
CROSS JOIN generate_series(1, CASE WHEN a.id = 667 THEN 2 ELSE 1 END) AS twice
WHERE a.id IN (740, 667, 673, 741);

-- 34 bookings synced in the last 24 h (next to 17 recent failures: a 66.67 %% success rate)
SELECT pg_temp.appt(800 + i, 630 + i %% 30, CASE WHEN i %% 2 = 0 THEN 450 ELSE 451 END,
                    CASE WHEN i %% 2 = 0 THEN '5c0ffee0-1111-4222-8333-444455556666'::uuid ELSE '5c0ffee0-1111-4222-8333-444455557777'::uuid END,
                    (SELECT t FROM _d WHERE n = 21 + i / 2) + interval '9 hours' + make_interval(hours => i %% 2 * 3),
                    'confirmed', 'synced', NULL, %(anchor)s::timestamptz - make_interval(mins => 20 + i * 30),
                    14000000 + i, 'synced-uid-' || i, (14000000 + i)::text)
FROM generate_series(0, 33) AS i;
-- the generated salon's syncs are older than a day
UPDATE appointments SET last_sync_attempt_at = least(last_sync_attempt_at, %(anchor)s::timestamptz - interval '25 hours')
WHERE company_id <> 2 AND last_sync_attempt_at IS NOT NULL;
SELECT setval(pg_get_serial_sequence('companies', 'id'), (SELECT max(id) FROM companies));
SELECT setval(pg_get_serial_sequence('services', 'id'), (SELECT max(id) FROM services));
