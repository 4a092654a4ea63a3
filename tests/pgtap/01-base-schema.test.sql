-- The base booking schema (revision 0001): the app's tables, columns, keys and foreign keys.
-- Later revisions add columns; this file checks that what the app relies on is still there.
SELECT plan(48);

SELECT has_table('public', 'companies', 'table companies exists');
SELECT has_table('public', 'branches', 'table branches exists');
SELECT has_table('public', 'customers', 'table customers exists');
SELECT has_table('public', 'staff', 'table staff exists');
SELECT has_table('public', 'services', 'table services exists');
SELECT has_table('public', 'calcom_event_map', 'table calcom_event_map exists');
SELECT has_table('public', 'appointments', 'table appointments exists');
SELECT has_table('public', 'appointment_phases', 'table appointment_phases exists');

SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'companies'$$,
    $$SELECT unnest(ARRAY['id', 'name', 'created_at', 'updated_at'])$$,
    'companies has every column the app uses');
SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'branches'$$,
    $$SELECT unnest(ARRAY['id', 'company_id', 'name', 'created_at', 'updated_at'])$$,
    'branches has every column the app uses');
SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'customers'$$,
    $$SELECT unnest(ARRAY['id', 'company_id', 'name', 'email', 'phone', 'source',
        'created_at', 'updated_at', 'deleted_at'])$$,
    'customers has every column the app uses');
SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'staff'$$,
    $$SELECT unnest(ARRAY['id', 'company_id', 'branch_id', 'name', 'email', 'calcom_user_id',
        'is_active'])$$,
    'staff has every column the app uses');
SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'services'$$,
    $$SELECT unnest(ARRAY['id', 'company_id', 'name', 'duration_minutes', 'composite', 'segments',
        'calcom_event_type_id'])$$,
    'services has every column the app uses');
SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'calcom_event_map'$$,
    $$SELECT unnest(ARRAY['service_id', 'segment_key', 'staff_id', 'event_type_id', 'child_event_type_id'])$$,
    'calcom_event_map has every column the app uses');
SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'appointments'$$,
    $$SELECT unnest(ARRAY['id', 'company_id', 'branch_id', 'customer_id', 'service_id', 'staff_id',
        'starts_at', 'ends_at', 'status', 'booking_timezone', 'source', 'sync_origin',
        'calcom_booking_id', 'calcom_v2_booking_id', 'calcom_v2_booking_uid', 'calcom_sync_status', 'sync_error_message', 'sync_error_code',
        'sync_attempt_count', 'last_sync_attempt_at', 'requires_manual_review', 'manual_review_flagged_at', 'idempotency_key', 'version',
        'is_composite', 'metadata', 'created_at', 'updated_at'])$$,
    'appointments has every column the app uses');
SELECT bag_has(
    $$SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'appointment_phases'$$,
    $$SELECT unnest(ARRAY['id', 'appointment_id', 'phase_type', 'segment_name', 'segment_key', 'sequence_order',
        'start_offset_minutes', 'duration_minutes', 'staff_required', 'start_time', 'end_time', 'calcom_booking_id',
        'calcom_booking_uid', 'calcom_sync_status', 'sync_error_message'])$$,
    'appointment_phases has every column the app uses');

SELECT col_is_pk('public', 'companies', 'id', 'companies.id is the primary key');
SELECT col_is_pk('public', 'branches', 'id', 'branches.id is the primary key');
SELECT col_is_pk('public', 'customers', 'id', 'customers.id is the primary key');
SELECT col_is_pk('public', 'staff', 'id', 'staff.id is the primary key');
SELECT col_is_pk('public', 'services', 'id', 'services.id is the primary key');
SELECT col_is_pk('public', 'calcom_event_map', 'id', 'calcom_event_map.id is the primary key');
SELECT col_is_pk('public', 'appointments', 'id', 'appointments.id is the primary key');
SELECT col_is_pk('public', 'appointment_phases', 'id', 'appointment_phases.id is the primary key');

SELECT fk_ok('public', 'branches', 'company_id', 'public', 'companies', 'id', 'branches.company_id references companies.id');
SELECT fk_ok('public', 'customers', 'company_id', 'public', 'companies', 'id', 'customers.company_id references companies.id');
SELECT fk_ok('public', 'staff', 'company_id', 'public', 'companies', 'id', 'staff.company_id references companies.id');
SELECT fk_ok('public', 'staff', 'branch_id', 'public', 'branches', 'id', 'staff.branch_id references branches.id');
SELECT fk_ok('public', 'services', 'company_id', 'public', 'companies', 'id', 'services.company_id references companies.id');
SELECT fk_ok('public', 'calcom_event_map', 'service_id', 'public', 'services', 'id', 'calcom_event_map.service_id references services.id');
SELECT fk_ok('public', 'calcom_event_map', 'staff_id', 'public', 'staff', 'id', 'calcom_event_map.staff_id references staff.id');
SELECT fk_ok('public', 'appointments', 'company_id', 'public', 'companies', 'id', 'appointments.company_id references companies.id');
SELECT fk_ok('public', 'appointments', 'branch_id', 'public', 'branches', 'id', 'appointments.branch_id references branches.id');
SELECT fk_ok('public', 'appointments', 'customer_id', 'public', 'customers', 'id', 'appointments.customer_id references customers.id');
SELECT fk_ok('public', 'appointments', 'service_id', 'public', 'services', 'id', 'appointments.service_id references services.id');
SELECT fk_ok('public', 'appointments', 'staff_id', 'public', 'staff', 'id', 'appointments.staff_id references staff.id');
SELECT fk_ok('public', 'appointment_phases', 'appointment_id', 'public', 'appointments', 'id', 'appointment_phases.appointment_id references appointments.id');
SELECT col_type_is('public', 'staff', 'id', 'uuid', 'staff ids are uuids, as in the app');
SELECT col_type_is('public', 'appointments', 'starts_at', 'timestamp with time zone', 'starts_at is a timestamptz');
SELECT col_type_is('public', 'appointments', 'ends_at', 'timestamp with time zone', 'ends_at is a timestamptz');
SELECT col_type_is('public', 'services', 'segments', 'jsonb', 'service segments are jsonb');
SELECT col_type_is('public', 'appointments', 'metadata', 'jsonb', 'appointment metadata is jsonb');
SELECT col_is_null('public', 'appointments', 'staff_id', 'staff_id stays nullable (ON DELETE SET NULL in the app)');
SELECT col_default_is('public', 'appointments', 'version', '1', 'version starts at 1 (optimistic locking)');
SELECT col_default_is('public', 'appointments', 'booking_timezone', 'Europe/Berlin'::text, 'booking timezone defaults to Europe/Berlin');
SELECT index_is_unique('public', 'customers', 'customers_email_unique', 'customer emails are globally unique, as in the app');
SELECT index_is_unique('public', 'appointments', 'appointments_calcom_v2_booking_id_unique', 'calcom_v2_booking_id is unique, as in the app');
SELECT throws_ok(
    $$INSERT INTO appointment_phases (appointment_id, phase_type, duration_minutes, start_time, end_time)
      VALUES (1, 'gap', 10, now(), now())$$,
    '23514', NULL, 'phase_type is limited to the app''s ENUM(initial, processing, final)');

SELECT * FROM finish();
