-- Demo/benchmark data generator (worker/devtools/datagen.py), set-based and deterministic.
-- Every "random" choice is pg_temp.rnd(x, seed * 1000 + salt), a non-negative hashint8extended, so a given
-- (salons, appointments_per_salon, customers_per_salon, anchor, seed) always yields the same rows.
-- Salon c (1..salons) owns ids in its own block, so no row depends on another salon's rows.
-- Host timelines never overlap: each salon has 7 hosts (the 8 staff rows include one person with two
-- rows sharing a Cal.com user), and a host has at most one appointment per day.
-- Parameters are psycopg named parameters: %(name)s.

-- name: datagen_templates
CREATE FUNCTION pg_temp.rnd(x bigint, salt bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT hashint8extended(x, salt) & 9223372036854775807';
-- The salon's service menu. Segments come in the app's live shape (key, name, durationMin, type,
-- staff_required, order) and, for "Ansatz + Längenausgleich", in the legacy admin shape
-- (key, name, duration, gap_after, preferSameStaff), which the app's phase builder ignores.
CREATE TEMP TABLE _svc_template (
    slot int PRIMARY KEY, name text, duration int, composite bool, segments jsonb, lo int, hi int
) ON COMMIT DROP;
INSERT INTO _svc_template VALUES
 (1, 'Damenhaarschnitt', 60, false, NULL, 0, 19),
 (2, 'Herrenhaarschnitt', 30, false, NULL, 20, 39),
 (3, 'Färben', 90, false, NULL, 40, 49),
 (4, 'Waschen & Föhnen', 30, false, NULL, 50, 59),
 (5, 'Bartpflege', 20, false, NULL, 60, 69),
 (6, 'Strähnen', 120, false, NULL, 70, 79),
 (7, 'Dauerwelle', 135, true, '[
   {"key":"A","name":"Wickeln","durationMin":50,"type":"active","staff_required":true,"order":1},
   {"key":"A_gap","name":"Einwirkzeit","durationMin":15,"type":"processing","staff_required":false,"order":2},
   {"key":"B","name":"Fixieren","durationMin":5,"type":"active","staff_required":true,"order":3},
   {"key":"B_gap","name":"Einwirkzeit Fixierung","durationMin":10,"type":"processing","staff_required":false,"order":4},
   {"key":"C","name":"Ausspülen","durationMin":15,"type":"active","staff_required":true,"order":5},
   {"key":"D","name":"Schneiden & Föhnen","durationMin":40,"type":"active","staff_required":true,"order":6}]', 80, 85),
 (8, 'Ansatzfärbung', 130, true, '[
   {"key":"A","name":"Farbe auftragen","durationMin":30,"type":"active","staff_required":true,"order":1},
   {"key":"A_gap","name":"Einwirkzeit","durationMin":35,"type":"processing","staff_required":false,"order":2},
   {"key":"B","name":"Ausspülen","durationMin":15,"type":"active","staff_required":true,"order":3},
   {"key":"C","name":"Schneiden","durationMin":30,"type":"active","staff_required":true,"order":4},
   {"key":"D","name":"Föhnen","durationMin":20,"type":"active","staff_required":true,"order":5}]', 86, 90),
 (9, 'Ansatz + Längenausgleich', 155, true, '[
   {"key":"A","name":"Ansatz färben","duration":40,"gap_after":30,"preferSameStaff":true},
   {"key":"B","name":"Längenausgleich","duration":15,"gap_after":0,"preferSameStaff":true},
   {"key":"C","name":"Schneiden","duration":40,"gap_after":0,"preferSameStaff":true},
   {"key":"D","name":"Föhnen","duration":30,"gap_after":0,"preferSameStaff":true}]', 91, 95),
 (10, 'Komplette Umfärbung', 165, true, '[
   {"key":"A","name":"Blondieren","durationMin":45,"type":"active","staff_required":true,"order":1},
   {"key":"A_gap","name":"Einwirkzeit","durationMin":40,"type":"processing","staff_required":false,"order":2},
   {"key":"B","name":"Tönen","durationMin":20,"type":"active","staff_required":true,"order":3},
   {"key":"B_gap","name":"Einwirkzeit Tönung","durationMin":20,"type":"processing","staff_required":false,"order":4},
   {"key":"C","name":"Föhnen","durationMin":40,"type":"active","staff_required":true,"order":5}]', 96, 99);

-- The app's createPhasesFromSegments, per service template: sort by `order` (missing = 0), duration
-- from durationMin (legacy `duration` is NOT read, so legacy services get no phases), processing
-- segments need no staff, offsets accumulate, sequence numbered from 1.
CREATE TEMP TABLE _phase_template ON COMMIT DROP AS
SELECT t.slot,
       (row_number() OVER w)::int AS sequence_order,
       CASE WHEN e.seg->>'type' = 'processing' THEN 'processing'
            WHEN row_number() OVER w = 1 THEN 'initial' ELSE 'final' END AS phase_type,
       e.seg->>'name' AS segment_name,
       e.seg->>'key' AS segment_key,
       ((sum((e.seg->>'durationMin')::int) OVER w) - (e.seg->>'durationMin')::int)::int AS start_offset_minutes,
       (e.seg->>'durationMin')::int AS duration_minutes,
       coalesce((e.seg->>'staff_required')::bool, true) AS staff_required
FROM _svc_template t
CROSS JOIN LATERAL jsonb_array_elements(t.segments) WITH ORDINALITY AS e(seg, idx)
WHERE t.composite AND (e.seg->>'durationMin')::int > 0
WINDOW w AS (PARTITION BY t.slot ORDER BY coalesce((e.seg->>'order')::int, 0), e.idx
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- name: datagen_companies
INSERT INTO companies (id, name, created_at, updated_at)
SELECT c,
       (ARRAY['Haarmonie', 'Schnittpunkt', 'Haarwerk', 'Kamm & Schere', 'Lockenpracht'])[1 + c %% 5] || ' ' || c,
       %(anchor)s::timestamptz - interval '400 days', %(anchor)s::timestamptz - interval '400 days'
FROM generate_series(1, %(salons)s) AS c;

INSERT INTO branches (id, company_id, name, created_at, updated_at)
SELECT md5('branch-' || c)::uuid, c, 'Hauptfiliale', %(anchor)s::timestamptz - interval '400 days',
       %(anchor)s::timestamptz - interval '400 days'
FROM generate_series(1, %(salons)s) AS c;

-- 8 staff rows per salon; rows k=0 and k=1 are one person (two rows, one Cal.com user), as in the app.
INSERT INTO staff (id, company_id, branch_id, name, email, calcom_user_id, is_active)
SELECT md5('staff-' || c || '-' || k)::uuid, c, md5('branch-' || c)::uuid,
       (ARRAY['Fabian Spitzer', 'Fabian Spitzer', 'Lena Wagner', 'Mehmet Yilmaz', 'Sophie Becker',
              'Jonas Hoffmann', 'Anna Schulz', 'Mia Richter'])[k + 1],
       CASE WHEN k = 1 THEN 'f.spitzer' ELSE 'staff' || k END || '@salon' || c || '.example',
       1000000 + c * 10 + greatest(k - 1, 0),
       true
FROM generate_series(1, %(salons)s) AS c, generate_series(0, 7) AS k;

INSERT INTO services (id, company_id, name, duration_minutes, composite, segments, calcom_event_type_id)
SELECT (c - 1) * 10 + t.slot, c, t.name, t.duration, t.composite, t.segments, 5000000 + (c - 1) * 10 + t.slot
FROM generate_series(1, %(salons)s) AS c, _svc_template t;

-- One Cal.com event type per composite service, staff-required segment and staff member (the app's
-- calcom_event_map); child ids are the bookable per-host children of managed event types.
INSERT INTO calcom_event_map (service_id, segment_key, staff_id, event_type_id, child_event_type_id)
SELECT (c - 1) * 10 + t.slot, e.seg->>'key', md5('staff-' || c || '-' || k)::uuid,
       6000000 + ((c - 1) * 10 + t.slot) * 100 + e.idx,
       70000000 + (((c - 1) * 10 + t.slot) * 100 + e.idx) * 10 + k
FROM generate_series(1, %(salons)s) AS c
CROSS JOIN _svc_template t
CROSS JOIN LATERAL jsonb_array_elements(t.segments) WITH ORDINALITY AS e(seg, idx)
CROSS JOIN generate_series(0, 7) AS k
WHERE t.composite AND coalesce(e.seg->>'type', 'active') <> 'processing';

-- name: datagen_customers
-- ~6 %% anonymous callers (phone anonymous_<unixts>_<8 hex>, no email: the Retell resolver's shape),
-- ~10 %% phone only, the rest email and phone.
INSERT INTO customers (id, company_id, name, email, phone, source, created_at, updated_at)
SELECT id, c, name,
       CASE WHEN kind >= %(anonymous_percent)s + 10 THEN lower(translate(name, ' äöüß', '.aous')) || '.' || id || '@mail.example' END,
       CASE WHEN kind < %(anonymous_percent)s THEN 'anonymous_' || (1762000000 + id * 37) || '_' || substr(md5(name || id), 1, 8)
            ELSE '+49151' || lpad((id * 7919 %% 100000000)::text, 8, '0') END,
       CASE WHEN kind < %(anonymous_percent)s THEN 'retell_webhook_anonymous' WHEN kind < 40 THEN 'retell_webhook' ELSE 'manual' END,
       %(anchor)s::timestamptz - make_interval(days => 200 + (id %% 190)::int),
       %(anchor)s::timestamptz - make_interval(days => 200 + (id %% 190)::int)
FROM (
    SELECT c, ((c - 1) * %(customers)s + i + 1 + %(id_offset)s)::bigint AS id,
           (ARRAY['Hans', 'Petra', 'Klaus', 'Sabine', 'Jürgen', 'Monika', 'Stefan', 'Andrea', 'Thomas', 'Julia',
                  'Michael', 'Katrin', 'Uwe', 'Birgit', 'Lukas', 'Leonie'])[1 + (pg_temp.rnd((c - 1) * %(customers)s + i, %(seed)s * 1000 + 1) %% 16)]
           || ' ' ||
           (ARRAY['Schuster', 'Müller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker',
                  'Schulz', 'Koch', 'Bauer', 'Richter', 'Klein', 'Wolf', 'Schröder'])[1 + (pg_temp.rnd((c - 1) * %(customers)s + i, %(seed)s * 1000 + 2) %% 16)]
           AS name,
           pg_temp.rnd((c - 1) * %(customers)s + i, %(seed)s * 1000 + 3) %% 100 AS kind
    FROM generate_series(1, %(salons)s) AS c, generate_series(0, %(customers)s - 1) AS i
) AS src;

-- name: datagen_appointments
-- Appointment j of salon c: host h = j %% 7, its k-th appointment (k = j / 7) lands on day
-- (k * 37 + h * 11) %% 365 of the window [anchor - 180 days, anchor + 185 days), so a host has at most one
-- appointment a day (needs appointments_per_salon <= 7 * 365). Customer j %% customers books at an hour
-- that differs between its appointments, so (customer, start, service) never repeats.
INSERT INTO appointments (
    id, company_id, branch_id, customer_id, service_id, staff_id, starts_at, ends_at, status, booking_timezone,
    source, sync_origin, calcom_booking_id, calcom_v2_booking_id, calcom_v2_booking_uid, calcom_sync_status,
    sync_error_message, sync_error_code, sync_attempt_count, last_sync_attempt_at, requires_manual_review,
    manual_review_flagged_at, idempotency_key, version, is_composite, metadata, created_at, updated_at)
SELECT id, c, md5('branch-' || c)::uuid, customer_id, service_id, staff_id, starts_at,
       starts_at + make_interval(mins => t.duration), status, 'Europe/Berlin',
       (ARRAY['retell_phone', 'retell_webhook', 'admin', 'api'])[1 + (r_src %% 4)],
       CASE WHEN r_src %% 4 < 2 THEN 'retell' WHEN r_src %% 4 = 2 THEN 'admin' ELSE 'api' END,
       CASE WHEN sync = 'synced' THEN 13000000 + id END,
       CASE WHEN sync = 'synced' THEN (13000000 + id)::text END,
       CASE WHEN sync = 'synced' THEN substr(md5('booking-' || id), 1, 22) END,
       sync,
       CASE WHEN sync = 'failed' THEN left('Cal.com API error: {"status":"error","timestamp":"' || to_char(starts_at - interval '2 days', 'YYYY-MM-DD"T"HH24:MI:SS".000Z"') || '","path":"/v2/bookings","error":{"code":"BadRequestException","message":"' ||
            CASE WHEN starts_at < %(anchor)s::timestamptz THEN 'Attempting to book a meeting in the past.' ELSE 'User either already has booking at this time or is not available' END ||
            '","details":{"message":"...","error":"Bad Request","statusCode":400}}}', 255) END,
       CASE WHEN sync = 'failed' THEN 'HTTP_400' END,
       CASE WHEN sync = 'failed' THEN 3 WHEN sync = 'synced' THEN 1 ELSE 0 END,
       CASE WHEN sync <> 'pending' THEN created_at + interval '5 seconds' END,
       sync = 'failed',
       CASE WHEN sync = 'failed' THEN created_at + interval '40 seconds' END,
       md5('idem-' || id)::uuid::text,
       1, t.composite, jsonb_build_object('customer_name', customer_name), created_at, created_at
FROM (
    SELECT a.*, s.slot,
           CASE WHEN a.status IN ('cancelled', 'no_show') AND a.r_sync %% 10 < 9 THEN 'synced'
                WHEN a.r_sync %% 1000 < %(failed_permille)s THEN 'failed'
                WHEN a.r_sync %% 1000 < %(failed_permille)s + %(pending_permille)s THEN 'pending'
                ELSE 'synced' END AS sync,
           -- booked 1-20 days ahead; when that lies in the future, at some point of the last 90 days
           CASE WHEN a.starts_at - make_interval(days => 1 + (a.r_src %% 20)::int, mins => (a.r_src %% 600)::int)
                     < %(anchor)s::timestamptz - interval '1 hour'
                THEN a.starts_at - make_interval(days => 1 + (a.r_src %% 20)::int, mins => (a.r_src %% 600)::int)
                ELSE %(anchor)s::timestamptz - make_interval(hours => 1 + (a.r_src %% 2160)::int) END AS created_at
    FROM (
        SELECT b.*,
               (%(anchor)s::date - 180 + day)::timestamp AT TIME ZONE 'Europe/Berlin'
                   + make_interval(hours => (8 + ((cust_n + (cust_i %% 5) * 2) %% 10))::int) AS starts_at,
               CASE WHEN day < 180 THEN
                        CASE WHEN r_status %% 100 < 80 THEN 'completed' WHEN r_status %% 100 < 90 THEN 'cancelled'
                             WHEN r_status %% 100 < 95 THEN 'no_show' ELSE 'confirmed' END
                    ELSE
                        CASE WHEN r_status %% 100 < 60 THEN 'confirmed' WHEN r_status %% 100 < 75 THEN 'scheduled'
                             WHEN r_status %% 100 < 85 THEN 'pending' WHEN r_status %% 100 < 90 THEN 'booked'
                             ELSE 'cancelled' END
               END AS status
        FROM (
            SELECT c, j, ((c - 1) * %(appointments)s + j + 1 + %(id_offset)s)::bigint AS id,
                   (c - 1) * %(customers)s + (j %% %(customers)s) + 1 + %(id_offset)s AS customer_id,
                   j %% %(customers)s AS cust_i, j / %(customers)s AS cust_n,
                   (((j / 7) * 37 + (j %% 7) * 11) %% 365)::int AS day,
                   md5('staff-' || c || '-' || CASE WHEN j %% 7 = 0 THEN (j / 7) %% 2 ELSE j %% 7 + 1 END)::uuid AS staff_id,
                   pg_temp.rnd((c - 1) * %(appointments)s + j, %(seed)s * 1000 + 11) AS r_svc,
                   pg_temp.rnd((c - 1) * %(appointments)s + j, %(seed)s * 1000 + 12) AS r_status,
                   pg_temp.rnd((c - 1) * %(appointments)s + j, %(seed)s * 1000 + 13) AS r_sync,
                   pg_temp.rnd((c - 1) * %(appointments)s + j, %(seed)s * 1000 + 14) AS r_src
            FROM generate_series(1, %(salons)s) AS c, generate_series(0, %(appointments)s - 1) AS j
        ) AS b
    ) AS a
    JOIN _svc_template s ON a.r_svc %% 100 BETWEEN s.lo AND s.hi
) AS x
JOIN _svc_template t ON t.slot = x.slot
JOIN (SELECT id AS cust_id, name AS customer_name FROM customers) AS cn ON cn.cust_id = x.customer_id
CROSS JOIN LATERAL (SELECT (c - 1) * 10 + x.slot AS service_id) AS sid;

-- name: datagen_phases
-- Phases as the app's observer made them: live-shape composites get them, legacy-shape ones don't
-- (the app never read `duration`), and a synced appointment's staff-required phases carry their own
-- Cal.com booking.
INSERT INTO appointment_phases (
    appointment_id, phase_type, segment_name, segment_key, sequence_order, start_offset_minutes,
    duration_minutes, staff_required, start_time, end_time, calcom_booking_id, calcom_booking_uid,
    calcom_sync_status, created_at, updated_at)
SELECT a.id, p.phase_type, p.segment_name, p.segment_key, p.sequence_order, p.start_offset_minutes,
       p.duration_minutes, p.staff_required,
       a.starts_at + make_interval(mins => p.start_offset_minutes),
       a.starts_at + make_interval(mins => p.start_offset_minutes + p.duration_minutes),
       CASE WHEN a.calcom_sync_status = 'synced' AND p.staff_required THEN 20000000 + a.id * 10 + p.sequence_order END,
       CASE WHEN a.calcom_sync_status = 'synced' AND p.staff_required
            THEN substr(md5('phase-' || a.id || '-' || p.sequence_order), 1, 22) END,
       CASE WHEN a.calcom_sync_status = 'synced' AND p.staff_required THEN 'synced'
            WHEN p.staff_required THEN a.calcom_sync_status ELSE 'synced' END,
       a.created_at, a.created_at
FROM appointments a
JOIN _phase_template p ON p.slot = a.service_id - (a.company_id - 1) * 10
WHERE a.is_composite;

-- name: datagen_sequences
SELECT setval(pg_get_serial_sequence('companies', 'id'), (SELECT max(id) FROM companies));
SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers));
SELECT setval(pg_get_serial_sequence('services', 'id'), (SELECT max(id) FROM services));
SELECT setval(pg_get_serial_sequence('appointments', 'id'), (SELECT max(id) FROM appointments));

-- name: demo_summary
-- One row per line of the demo's summary table.
SELECT 'companies' AS what, count(*)::bigint AS n FROM companies
UNION ALL SELECT 'staff rows', count(*) FROM staff
UNION ALL SELECT 'people with two staff rows (one Cal.com user)',
                 count(*) FROM (SELECT calcom_user_id FROM staff GROUP BY calcom_user_id HAVING count(*) > 1) d
UNION ALL SELECT 'services', count(*) FROM services
UNION ALL SELECT 'composite services', count(*) FROM services WHERE composite
UNION ALL SELECT 'customers', count(*) FROM customers
UNION ALL SELECT 'customers with anonymous_ phone and no email',
                 count(*) FROM customers WHERE phone LIKE 'anonymous\_%%' AND coalesce(email, '') = ''
UNION ALL SELECT 'appointments', count(*) FROM appointments
UNION ALL SELECT 'appointments in the past', count(*) FROM appointments WHERE starts_at < now()
UNION ALL SELECT 'appointments in the future', count(*) FROM appointments WHERE starts_at >= now()
UNION ALL SELECT 'composite appointments', count(*) FROM appointments WHERE is_composite
UNION ALL SELECT 'composite appointments without phases',
                 count(*) FROM appointments a
                 WHERE a.is_composite AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)
UNION ALL SELECT 'appointment phases', count(*) FROM appointment_phases
UNION ALL SELECT 'sync status ' || calcom_sync_status, count(*) FROM appointments GROUP BY calcom_sync_status
UNION ALL SELECT 'status ' || status, count(*) FROM appointments GROUP BY status;
