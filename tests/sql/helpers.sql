-- Test helpers (loaded into the test template after the migrations): factories and error capture.
CREATE SCHEMA tests;

-- The SQLSTATE and constraint name a statement fails with ('ok' when it succeeds), e.g.
-- is(tests.error_of($$INSERT …$$), '23505 appointments_one_live_per_customer_slot', '…').
CREATE FUNCTION tests.error_of(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_constraint text;
BEGIN
    EXECUTE p_sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_constraint = CONSTRAINT_NAME;
    RETURN v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
END
$$;

-- The error message (and DETAIL, after " / ") a statement fails with (NULL when it succeeds).
CREATE FUNCTION tests.message_of(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_detail text;
BEGIN
    EXECUTE p_sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
    RETURN SQLERRM || coalesce(' / ' || nullif(v_detail, ''), '');
END
$$;

CREATE FUNCTION tests.make_company(p_name text DEFAULT 'Testsalon') RETURNS bigint
LANGUAGE sql AS $$
    WITH c AS (INSERT INTO companies (name) VALUES (p_name) RETURNING id)
    SELECT id FROM c
$$;

CREATE FUNCTION tests.make_staff(p_company bigint, p_name text, p_calcom_user bigint DEFAULT NULL) RETURNS uuid
LANGUAGE sql AS $$
    INSERT INTO staff (company_id, name, email, calcom_user_id)
    VALUES (p_company, p_name, lower(replace(p_name, ' ', '.')) || '.' || substr(md5(random()::text), 1, 6) || '@test.example',
            p_calcom_user)
    RETURNING id
$$;

CREATE FUNCTION tests.make_service(p_company bigint, p_name text, p_minutes int,
                                   p_segments jsonb DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO services (company_id, name, duration_minutes, composite, segments, calcom_event_type_id)
    VALUES (p_company, p_name, p_minutes, p_segments IS NOT NULL, p_segments, (random() * 1e9)::bigint)
    RETURNING id
$$;

CREATE FUNCTION tests.make_customer(p_company bigint, p_name text DEFAULT 'Hans Schuster',
                                    p_email text DEFAULT NULL, p_phone text DEFAULT '+4915112345678') RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO customers (company_id, name, email, phone) VALUES (p_company, p_name, p_email, p_phone)
    RETURNING id
$$;

-- An appointment of p_minutes (default: the service's duration) at p_start.
CREATE FUNCTION tests.make_appointment(p_customer bigint, p_service bigint, p_staff uuid, p_start timestamptz,
                                       p_status text DEFAULT 'confirmed', p_minutes int DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO appointments (company_id, customer_id, service_id, staff_id, starts_at, ends_at, status, is_composite)
    SELECT c.company_id, p_customer, p_service, p_staff, p_start,
           p_start + make_interval(mins => coalesce(p_minutes, s.duration_minutes, 60)), p_status,
           coalesce(s.composite, false)
    FROM customers c LEFT JOIN services s ON s.id = p_service
    WHERE c.id = p_customer
    RETURNING id
$$;

-- The Dauerwelle in the app's live segment shape (135 min: A 50, A_gap 15, B 5, B_gap 10, C 15, D 40).
CREATE FUNCTION tests.dauerwelle_segments() RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT '[
      {"key":"A","name":"Wickeln","durationMin":50,"type":"active","staff_required":true,"order":1},
      {"key":"A_gap","name":"Einwirkzeit","durationMin":15,"type":"processing","staff_required":false,"order":2},
      {"key":"B","name":"Fixieren","durationMin":5,"type":"active","staff_required":true,"order":3},
      {"key":"B_gap","name":"Einwirkzeit Fixierung","durationMin":10,"type":"processing","staff_required":false,"order":4},
      {"key":"C","name":"Ausspülen","durationMin":15,"type":"active","staff_required":true,"order":5},
      {"key":"D","name":"Schneiden & Föhnen","durationMin":40,"type":"active","staff_required":true,"order":6}]'::jsonb
$$;

-- A salon with two staff (Cal.com users 7001, 7002), a simple service (event type 8001, 30 min), a
-- Dauerwelle (event type 8002) whose staff-required segments A, B, C, D have one child event type per
-- staff member (calcom_event_map), and a customer with a real e-mail and phone.
CREATE FUNCTION tests.make_salon() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_company bigint := tests.make_company('Salon Test');
    v_lena uuid := tests.make_staff(v_company, 'Lena Wagner', 7001);
    v_mia uuid := tests.make_staff(v_company, 'Mia Richter', 7002);
    v_cut bigint;
    v_perm bigint;
    v_customer bigint;
BEGIN
    INSERT INTO services (company_id, name, duration_minutes, calcom_event_type_id)
    VALUES (v_company, 'Herrenhaarschnitt', 30, 8001) RETURNING id INTO v_cut;
    INSERT INTO services (company_id, name, duration_minutes, composite, segments, calcom_event_type_id)
    VALUES (v_company, 'Dauerwelle', 135, true, tests.dauerwelle_segments(), 8002) RETURNING id INTO v_perm;
    INSERT INTO calcom_event_map (service_id, segment_key, staff_id, event_type_id, child_event_type_id)
    SELECT v_perm, k, s.id, 8100 + i, 8200 + i * 10 + s.n
    FROM (VALUES ('A', 1), ('B', 2), ('C', 3), ('D', 4)) AS seg(k, i),
         (VALUES (v_lena, 1), (v_mia, 2)) AS s(id, n);
    v_customer := tests.make_customer(v_company, 'Hans Schuster', 'hans.schuster@mail.example', '+4915112345678');
    RETURN jsonb_build_object('company', v_company, 'lena', v_lena, 'mia', v_mia, 'cut', v_cut, 'perm', v_perm,
                              'customer', v_customer);
END
$$;

-- A fingerprint of everything the runbook may touch (to show that a dry run changes nothing and that
-- undo restores exactly). The outbox is left out: undoing a change is itself a change to sync.
CREATE FUNCTION tests.runbook_fingerprint() RETURNS text
LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', id, status, calcom_sync_status, requires_manual_review, manual_review_flagged_at,
                                     sync_error_code, sync_error_message, calcom_booking_id, calcom_v2_booking_id,
                                     calcom_v2_booking_uid), ';' ORDER BY id) FROM appointments),
        (SELECT string_agg(concat_ws(',', id, email, email_is_placeholder), ';' ORDER BY id) FROM customers),
        (SELECT string_agg(to_jsonb(p)::text, ';' ORDER BY id) FROM appointment_phases p),
        (SELECT string_agg(concat_ws(',', id, resolved_at), ';' ORDER BY id) FROM calsync.integrity_issues),
        (SELECT count(*) FROM calsync.superseded_phases)::text))
$$;
