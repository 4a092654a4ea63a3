-- Frozen SQL of revision 0015 (never edit; sql/ holds the current definitions).

-- name: table
CREATE TABLE calsync.company_settings (
    company_id   bigint PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    phone_region text CONSTRAINT company_settings_phone_region_is_iso_3166_alpha2 CHECK (phone_region ~ '^[A-Z]{2}$'),
    language     text CONSTRAINT company_settings_language_is_a_calcom_language_code
                      CHECK (language ~ '^[a-z]{2}(-([A-Z]{2}|[0-9]{3}))?$'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE calsync.company_settings IS
    'Per salon (company): how its bookings are sent to Cal.com. No row, or NULL in a column: the worker''s default.';
COMMENT ON COLUMN calsync.company_settings.company_id IS 'the company (salon)';
COMMENT ON COLUMN calsync.company_settings.phone_region IS
    'ISO 3166 alpha-2 country for national phone formats (030 1234567 in DE is +49301234567); NULL: CALSYNC_PHONE_REGION (default DE)';
COMMENT ON COLUMN calsync.company_settings.language IS
    'language of Cal.com''s e-mails to the attendee (a Cal.com language code: de, en, pt-BR, es-419, …); NULL: de';
COMMENT ON COLUMN calsync.company_settings.updated_at IS 'when the row was last changed (set it when you change it)';

-- name: types
ALTER TYPE calsync.sync_customer ADD ATTRIBUTE email_accepted boolean, ADD ATTRIBUTE placeholder_email text;
ALTER TYPE calsync.appointment_sync_state ADD ATTRIBUTE phone_region text, ADD ATTRIBUTE language text;

-- name: functions
-- from: sql/functions/has_email.sql
-- from: sql/functions/contact.sql
-- from: sql/functions/placeholder_email.sql
-- from: sql/functions/appointment_sync_state.sql
-- from: sql/functions/record_contact_finding.sql
-- from: sql/functions/resolve_contact_finding.sql
-- from: sql/functions/resolve_changed_contact_findings.sql
-- Whether a customer has an e-mail at all, usable or not. Only such a customer keeps what is stored: the
-- placeholder-email trigger fills customer_<id>@<domain> only where this is false (and there is no usable phone).
-- Blank means spaces only (btrim), as everywhere in these rules.
CREATE OR REPLACE FUNCTION calsync.has_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND btrim(p_email) <> ''
$$;
COMMENT ON FUNCTION calsync.has_email(text) IS
    'An e-mail is stored at all: not NULL and not blank. Whether Cal.com accepts it is calsync.is_usable_email.';

-- Contact rules shared by the placeholder-email trigger, the sync state, the worker's guards and the views.

-- Cal.com's own rule (emailSchema of packages/lib/emailSchema.ts, applied by the booking responses schema to a
-- required e-mail): at most 254 characters and
--   /^(?!\.)(?!.*\.\.)([A-Z0-9_+-\.']*)[A-Z0-9_+'-]@([A-Z0-9][A-Z0-9\-]*\.)+[A-Z]{2,}$/i
-- Spelled out here: `+-\.` in the first class is the range + .. . (so a comma is allowed, not as the last
-- character of the local part); /i folds ASCII letters only, so both cases are written out and `~` stays
-- case-sensitive (no locale folding); `$` matches only at the very end; nothing is trimmed. The worker's copy is
-- worker/sync/contacts.py calcom_accepts_email; tests/test_contacts.py compares the two with the simulator's.
CREATE OR REPLACE FUNCTION calsync.is_usable_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND length(p_email) <= 254
       AND p_email ~ '^(?!\.)(?!.*\.\.)[A-Za-z0-9_+,.''-]*[A-Za-z0-9_+''-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$'
$$;
COMMENT ON FUNCTION calsync.is_usable_email(text) IS
    'An e-mail Cal.com accepts for a booking: its emailSchema rule exactly (the regex, at most 254 characters, nothing trimmed). NULL is not.';

CREATE OR REPLACE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_phone IS NOT NULL AND btrim(p_phone) <> '' AND p_phone NOT LIKE 'anonymous%'
$$;
COMMENT ON FUNCTION calsync.is_usable_phone(text) IS
    'A phone Cal.com accepts: not NULL, not blank, and not the voice agent''s anonymous_<ts>_<hash> stand-in.';

CREATE OR REPLACE FUNCTION calsync.placeholder_email(p_customer_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'customer_' || p_customer_id || '@'
           || coalesce((SELECT value FROM calsync.settings WHERE key = 'placeholder_email_domain'), 'placeholder.invalid')
$$;
COMMENT ON FUNCTION calsync.placeholder_email(bigint) IS
    'customer_<id>@<domain>, the domain from calsync.settings placeholder_email_domain (default placeholder.invalid).';

-- Rule: a customer always has a contact Cal.com accepts. Saved with no e-mail at all (NULL or blank) and no
-- usable phone, a customer gets customer_<id>@<domain> and email_is_placeholder = true; a real e-mail given
-- later replaces it and clears the flag. Blank e-mails become NULL (they collided on the unique index).
-- An e-mail that is there but that Cal.com refuses (calsync.is_usable_email) is kept as it is: it is the
-- customer's data, to be corrected (remediation.customers_with_invalid_contact); meanwhile the worker books with
-- the placeholder in its place (calsync.sync_customer.placeholder_email) and never sends it.
CREATE OR REPLACE FUNCTION calsync.tg_customers__fill_placeholder_email() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_placeholder text := calsync.placeholder_email(NEW.id);
BEGIN
    IF NEW.email IS NOT NULL AND btrim(NEW.email) = '' THEN
        NEW.email := NULL;
    END IF;
    IF calsync.has_email(NEW.email) THEN  -- kept, whether Cal.com accepts it or not
        NEW.email_is_placeholder := (NEW.email = v_placeholder)
            OR (TG_OP = 'UPDATE' AND OLD.email_is_placeholder AND NEW.email = OLD.email);
    ELSIF calsync.is_usable_phone(NEW.phone) THEN
        NEW.email_is_placeholder := false;
    ELSE
        NEW.email := v_placeholder;
        NEW.email_is_placeholder := true;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_customers__fill_placeholder_email() IS
    'Trigger customers_fill_placeholder_email: no e-mail at all (NULL or blank) and no usable phone gives customer_<id>@<domain>; any other e-mail is kept.';

-- Backfill in batches (by id): touching email fires the trigger above, the one place the rule lives.
CREATE OR REPLACE FUNCTION calsync.placeholder_email_backfill_batch(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
BEGIN
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM customers WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE customers SET email = email
    WHERE id > p_after_id AND id <= v_last
      AND ((NOT calsync.has_email(email) AND NOT calsync.is_usable_phone(phone))
           OR (email IS NOT NULL AND btrim(email) = '')
           OR (email = calsync.placeholder_email(id) AND NOT email_is_placeholder));
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.placeholder_email_backfill_batch(bigint, integer) IS
    'One batch of the placeholder-email backfill: customers with id in (after_id, returned id]; NULL when done.';

-- What the worker reads to sync appointments: one calsync.appointment_sync_state per id (the Python twin is
-- worker/sync/contract.py SyncState). An id whose appointment no longer exists comes back deleted, with what
-- Cal.com still has for it. Read with the caller's rights (the worker role may read these tables).
CREATE OR REPLACE FUNCTION calsync.appointment_sync_state(p_ids bigint[])
RETURNS SETOF calsync.appointment_sync_state
LANGUAGE sql STABLE AS $$
    SELECT ROW(
        x.id, a.id IS NULL, CASE WHEN a.id IS NULL THEN 'cancelled' ELSE a.status END, a.starts_at, a.ends_at,
        coalesce(a.is_composite, false), a.booking_timezone, a.staff_id, a.calcom_v2_booking_uid,
        a.calcom_sync_status,
        -- the times the appointment had in its undelivered events (where an earlier attempt may have booked it)
        coalesce((SELECT array_agg(DISTINCT (o.payload->>'starts_at')::timestamptz) FROM calsync.outbox o
                  WHERE a.id IS NOT NULL AND o.aggregateid = a.id::text AND o.payload ? 'starts_at'), '{}'),
        -- a host conflict listed as a known issue (grandfathered by the rules' pre-flight, or flagged by the
        -- runbook) that still exists: not synced until the business reschedules one of the bookings
        CASE WHEN EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'host_busy_time_no_overlap' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL)
            THEN (SELECT h.other_id FROM remediation.host_conflicts_of(a.id) AS h LIMIT 1) END,
        -- usable_email and email_accepted are one rule (Cal.com's, calsync.is_usable_email); an e-mail it refuses is
        -- never sent: placeholder_email goes in its place (the stored e-mail is kept for someone to correct)
        CASE WHEN c.id IS NOT NULL THEN ROW(
            c.id, c.name, c.email, c.phone, coalesce(c.email_is_placeholder, false), calsync.is_usable_email(c.email),
            calsync.is_usable_phone(c.phone), calsync.is_usable_email(c.email),
            calsync.placeholder_email(c.id))::calsync.sync_customer END,
        CASE WHEN s.id IS NOT NULL THEN ROW(s.id, s.name, s.calcom_event_type_id)::calsync.sync_service END,
        coalesce((
            SELECT array_agg(ROW(p.id, p.sequence_order, p.segment_key, p.segment_name, p.staff_required,
                                 p.start_time, p.end_time, p.calcom_booking_uid, p.calcom_booking_id,
                                 p.calcom_sync_status)::calsync.sync_phase ORDER BY p.sequence_order, p.id)
            FROM appointment_phases p WHERE p.appointment_id = a.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(m.segment_key, coalesce(m.child_event_type_id, m.event_type_id))
                             ::calsync.sync_segment_event_type ORDER BY m.segment_key)
            FROM calcom_event_map m
            WHERE m.service_id = a.service_id AND m.staff_id = a.staff_id
              AND coalesce(m.child_event_type_id, m.event_type_id) IS NOT NULL), '{}'),
        coalesce((
            SELECT array_agg(ROW(b.slot, b.uid, b.booking_id, b.start_at, b.end_at, b.event_type_id)
                             ::calsync.sync_known_booking ORDER BY b.slot)
            FROM calsync.synced_bookings b WHERE b.appointment_id = x.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(sp.id, sp.phase_id, sp.calcom_booking_uid)::calsync.sync_superseded_booking
                             ORDER BY sp.id)
            FROM calsync.superseded_phases sp
            WHERE sp.appointment_id = a.id AND sp.calcom_booking_uid IS NOT NULL AND sp.calcom_cancelled_at IS NULL),
            '{}'),
        (SELECT i.detail FROM calsync.integrity_issues i
         WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
           AND i.resolved_at IS NULL LIMIT 1),
        EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL),
        -- the salon's phone region and attendee language (NULL: the worker's defaults)
        cs.phone_region, cs.language
    )::calsync.appointment_sync_state
    FROM unnest(p_ids) AS x(id)
    LEFT JOIN appointments a ON a.id = x.id
    LEFT JOIN customers c ON c.id = a.customer_id
    LEFT JOIN services s ON s.id = a.service_id
    LEFT JOIN calsync.company_settings cs ON cs.company_id = a.company_id
$$;
COMMENT ON FUNCTION calsync.appointment_sync_state(bigint[]) IS
    'What the worker needs to sync these appointments, one calsync.appointment_sync_state each (deleted ones too).';

-- A contact value Cal.com would refuse, reported as a fact by the worker (through calsync.finish_sync_events, which
-- runs as the owner): phones are checked with libphonenumber in the worker, which SQL cannot do. Upserts the one
-- open calsync.integrity_issues row of rule customers_phone_valid_for_calcom for the customer (detail = p_reason,
-- found_by 'worker'); remediation.customers_with_invalid_contact lists it. Recorded only while the customer still
-- has p_value (a phone changed since the worker read it is checked again at its next sync); a later change of the
-- phone resolves it (trigger customers_resolve_changed_contact_findings), and so does calsync.resolve_contact_finding.
-- p_reason is shown to calsync_readonly (remediation.integrity_issues): it must not repeat the value.
-- Returns the open issue's id, or NULL when nothing was recorded (no such customer, or another value now).
CREATE OR REPLACE FUNCTION calsync.record_contact_finding(p_customer_id bigint, p_field text, p_value text,
                                                         p_reason text, p_now timestamptz DEFAULT now())
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_field IS DISTINCT FROM 'phone' THEN
        RAISE EXCEPTION 'calsync.record_contact_finding: field % is not reported by the worker', quote_nullable(p_field)
            USING ERRCODE = '22023',
                  HINT = 'Only phone: e-mails are checked in SQL (calsync.is_usable_email).';
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' THEN
        RAISE EXCEPTION 'calsync.record_contact_finding: a finding needs its reason' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = p_customer_id AND c.phone IS NOT DISTINCT FROM p_value) THEN
        RETURN NULL;
    END IF;
    INSERT INTO calsync.integrity_issues AS i (rule, table_name, row_id, detail, found_by, found_at)
    VALUES ('customers_phone_valid_for_calcom', 'customers', p_customer_id, left(p_reason, 500), 'worker', p_now)
    ON CONFLICT (rule, table_name, row_id) WHERE resolved_at IS NULL
    DO UPDATE SET detail = excluded.detail, found_at = excluded.found_at
        WHERE i.detail IS DISTINCT FROM excluded.detail  -- the same finding again writes nothing
    RETURNING i.id INTO v_id;
    IF v_id IS NULL THEN
        SELECT i.id INTO v_id FROM calsync.integrity_issues i
        WHERE i.rule = 'customers_phone_valid_for_calcom' AND i.table_name = 'customers' AND i.row_id = p_customer_id
          AND i.resolved_at IS NULL;
    END IF;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION calsync.record_contact_finding(bigint, text, text, text, timestamptz) IS
    'Record that Cal.com would refuse the customer''s phone (p_field ''phone'', p_value as stored, p_reason in words without the value): one open integrity issue customers_phone_valid_for_calcom.';

-- The worker found the customer's phone valid again (or no longer a finding): its open issue of rule
-- customers_phone_valid_for_calcom is resolved (never deleted). Returns true when one was open.
CREATE OR REPLACE FUNCTION calsync.resolve_contact_finding(p_customer_id bigint, p_field text,
                                                          p_now timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF p_field IS DISTINCT FROM 'phone' THEN
        RAISE EXCEPTION 'calsync.resolve_contact_finding: field % is not reported by the worker', quote_nullable(p_field)
            USING ERRCODE = '22023',
                  HINT = 'Only phone: e-mails are checked in SQL (calsync.is_usable_email).';
    END IF;
    UPDATE calsync.integrity_issues
    SET resolved_at = p_now, resolved_by = 'worker', resolution = 'the phone is valid for Cal.com now'
    WHERE rule = 'customers_phone_valid_for_calcom' AND table_name = 'customers' AND row_id = p_customer_id
      AND resolved_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION calsync.resolve_contact_finding(bigint, text, timestamptz) IS
    'Resolve the customer''s open phone finding (customers_phone_valid_for_calcom): the worker found the phone valid. True when one was open.';

-- A finding is about a value: once the customer's phone changes, its open finding no longer describes what is
-- stored, so it is resolved; the worker checks the new phone at the customer's next sync (and records it again if
-- Cal.com would refuse it too).
CREATE OR REPLACE FUNCTION calsync.tg_customers__resolve_changed_contact_findings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE calsync.integrity_issues
    SET resolved_at = now(), resolved_by = 'customers_resolve_changed_contact_findings',
        resolution = 'the phone changed: checked again at the next sync'
    WHERE rule = 'customers_phone_valid_for_calcom' AND table_name = 'customers' AND row_id = NEW.id
      AND resolved_at IS NULL;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION calsync.tg_customers__resolve_changed_contact_findings() IS
    'Trigger customers_resolve_changed_contact_findings: a changed phone resolves its open phone finding.';

-- name: trigger
-- from: sql/triggers/customers__resolve_changed_contact_findings.sql
CREATE OR REPLACE TRIGGER customers_resolve_changed_contact_findings
    AFTER UPDATE OF phone ON customers
    FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone)
    EXECUTE FUNCTION calsync.tg_customers__resolve_changed_contact_findings();

-- name: view
-- from: sql/views/remediation_customers_with_invalid_contact.sql
-- Contacts Cal.com would refuse, of customers who still have something to sync: a live appointment that is not
-- synced yet or is still to come. E-mails are checked here (calsync.is_usable_email: present but refused); phones
-- are checked by the worker with libphonenumber and recorded as facts (calsync.record_contact_finding). Nothing is
-- overwritten: the stored value stays until someone corrects it; meanwhile bookings carry the placeholder e-mail
-- instead of a refused one and no phone instead of a refused one.
CREATE OR REPLACE VIEW remediation.customers_with_invalid_contact AS
WITH findings AS (
    SELECT c.id AS customer_id, c.company_id, 'email'::text AS field, c.email::text AS stored_value,
           -- why, in words: the first reason that applies, the last one being the rule itself (the reasons are
           -- spelled out here, not in a calsync function, so that readonly needs no access to schema calsync)
           CASE WHEN length(c.email) > 254 THEN 'longer than 254 characters'
                WHEN c.email ~ '^\s|\s$' THEN 'a space or line break before or after the address (Cal.com does not trim)'
                WHEN c.email ~ '\s' THEN 'a space or line break inside the address'
                WHEN strpos(c.email, '@') = 0 THEN 'no @'
                WHEN c.email ~ '@.*@' THEN 'more than one @'
                WHEN c.email ~ '[^ -~]' THEN 'characters other than ASCII (Cal.com accepts ASCII addresses only)'
                WHEN c.email !~ '@.*\.[A-Za-z]{2,}$' THEN 'the domain does not end in a top-level domain of two or more letters'
                ELSE 'not an address Cal.com accepts (its e-mail rule, calsync.is_usable_email)' END AS reason,
           'calsync.is_usable_email'::text AS found_by,
           NULL::timestamptz AS found_at,
           'correct the e-mail (it is kept; bookings use the placeholder meanwhile)'::text AS recommended_action
    FROM customers c
    WHERE c.deleted_at IS NULL AND calsync.has_email(c.email) AND NOT calsync.is_usable_email(c.email)
    UNION ALL
    SELECT c.id, c.company_id, 'phone', c.phone::text, i.detail, i.found_by, i.found_at,
           'correct the phone: an international number (+49 …) or one valid in the salon''s region '
           || '(calsync.company_settings.phone_region); bookings are sent without it meanwhile'
    FROM calsync.integrity_issues i
    JOIN customers c ON c.id = i.row_id
    WHERE i.rule = 'customers_phone_valid_for_calcom' AND i.table_name = 'customers' AND i.resolved_at IS NULL
      AND c.deleted_at IS NULL
)
SELECT f.customer_id, f.company_id, f.field, f.stored_value, f.reason, f.found_by, f.found_at, a.appointments,
       a.next_starts_at, f.recommended_action
FROM findings f
CROSS JOIN LATERAL (
    SELECT count(*)::int AS appointments, min(x.starts_at) FILTER (WHERE x.starts_at >= now()) AS next_starts_at
    FROM appointments x
    WHERE x.customer_id = f.customer_id AND x.status NOT IN ('cancelled', 'no_show')
      AND (x.calcom_sync_status <> 'synced' OR x.starts_at >= now())
) AS a
WHERE a.appointments > 0;
COMMENT ON VIEW remediation.customers_with_invalid_contact IS
    'One row per customer and contact field that Cal.com would refuse (an e-mail present but not accepted, a phone the worker found invalid), for customers with a live appointment not synced yet or still to come. The stored value is kept: correct it.';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.customer_id IS 'the customer';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.company_id IS 'the customer''s company (salon)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.field IS 'which contact: email or phone';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.stored_value IS 'the value as stored (kept as it is; never sent to Cal.com)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.reason IS 'why Cal.com refuses it, in words';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.found_by IS 'calsync.is_usable_email (checked now, in SQL) or worker (a phone checked with libphonenumber at a sync)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.found_at IS 'when the worker found it (NULL for e-mails: checked as you read)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.appointments IS 'the customer''s live appointments not synced yet or still to come';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.next_starts_at IS 'the first of them still to come (NULL: only past ones are unsynced)';
COMMENT ON COLUMN remediation.customers_with_invalid_contact.recommended_action IS 'what to do, in words';

-- name: grants
GRANT SELECT ON calsync.company_settings, calsync.settings TO calsync_worker;
REVOKE SELECT ON remediation.customers_with_invalid_contact FROM calsync_readonly;
GRANT SELECT (customer_id, company_id, field, reason, found_by, found_at, appointments, next_starts_at,
              recommended_action) ON remediation.customers_with_invalid_contact TO calsync_readonly;
GRANT SELECT ON remediation.customers_with_invalid_contact TO calsync_remediator;
REVOKE EXECUTE ON FUNCTION calsync.record_contact_finding(bigint, text, text, text, timestamptz),
    calsync.resolve_contact_finding(bigint, text, timestamptz) FROM PUBLIC;

-- name: statistics
-- the planner's estimate of the refused e-mails: without them length(email) > 254 counts as a third of all customers
CREATE STATISTICS calsync.customers_email_length ON (length(email::text)) FROM customers;

-- name: analyze
ANALYZE (SKIP_LOCKED) customers;

-- name: drop_new
DROP VIEW remediation.customers_with_invalid_contact;
DROP TRIGGER customers_resolve_changed_contact_findings ON customers;
DROP STATISTICS IF EXISTS calsync.customers_email_length;  -- IF EXISTS: drafts of this revision had none
-- squawk-ignore ban-drop-column -- composite types of the worker contract (no stored data); restores 0014's shape
ALTER TYPE calsync.sync_customer DROP ATTRIBUTE placeholder_email, DROP ATTRIBUTE email_accepted;
ALTER TYPE calsync.appointment_sync_state DROP ATTRIBUTE language, DROP ATTRIBUTE phone_region;

-- name: previous_functions
-- revision 0014's definitions, frozen here (sql/functions/contact.sql, placeholder_email.sql and
-- appointment_sync_state.sql as they were): the loose e-mail rule, the trigger that gave the placeholder to any
-- e-mail it called unusable, the state without the 0015 attributes
-- Contact rules shared by the placeholder-email trigger, the worker's pre-flight guard and the views.

CREATE OR REPLACE FUNCTION calsync.is_usable_email(p_email text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_email IS NOT NULL AND btrim(p_email) <> ''
$$;
COMMENT ON FUNCTION calsync.is_usable_email(text) IS 'An e-mail Cal.com can be given: not NULL and not blank.';

CREATE OR REPLACE FUNCTION calsync.is_usable_phone(p_phone text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_phone IS NOT NULL AND btrim(p_phone) <> '' AND p_phone NOT LIKE 'anonymous%'
$$;
COMMENT ON FUNCTION calsync.is_usable_phone(text) IS
    'A phone Cal.com accepts: not NULL, not blank, and not the voice agent''s anonymous_<ts>_<hash> stand-in.';

CREATE OR REPLACE FUNCTION calsync.placeholder_email(p_customer_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'customer_' || p_customer_id || '@'
           || coalesce((SELECT value FROM calsync.settings WHERE key = 'placeholder_email_domain'), 'placeholder.invalid')
$$;
COMMENT ON FUNCTION calsync.placeholder_email(bigint) IS
    'customer_<id>@<domain>, the domain from calsync.settings placeholder_email_domain (default placeholder.invalid).';

-- Rule: a customer always has a contact Cal.com accepts. Saved with no usable e-mail and no usable
-- phone, a customer gets customer_<id>@<domain> and email_is_placeholder = true; a real e-mail given
-- later replaces it and clears the flag. Blank e-mails become NULL (they collided on the unique index).
CREATE OR REPLACE FUNCTION calsync.tg_customers__fill_placeholder_email() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_placeholder text := calsync.placeholder_email(NEW.id);
BEGIN
    IF NEW.email IS NOT NULL AND btrim(NEW.email) = '' THEN
        NEW.email := NULL;
    END IF;
    IF calsync.is_usable_email(NEW.email) THEN
        NEW.email_is_placeholder := (NEW.email = v_placeholder)
            OR (TG_OP = 'UPDATE' AND OLD.email_is_placeholder AND NEW.email = OLD.email);
    ELSIF calsync.is_usable_phone(NEW.phone) THEN
        NEW.email_is_placeholder := false;
    ELSE
        NEW.email := v_placeholder;
        NEW.email_is_placeholder := true;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_customers__fill_placeholder_email() IS
    'Trigger customers_fill_placeholder_email: no usable e-mail and no usable phone gives customer_<id>@<domain>.';

-- Backfill in batches (by id): touching email fires the trigger above, the one place the rule lives.
CREATE OR REPLACE FUNCTION calsync.placeholder_email_backfill_batch(p_after_id bigint, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
BEGIN
    SELECT max(id) INTO v_last
    FROM (SELECT id FROM customers WHERE id > p_after_id ORDER BY id LIMIT p_batch) AS b;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE customers SET email = email
    WHERE id > p_after_id AND id <= v_last
      AND ((NOT calsync.is_usable_email(email) AND NOT calsync.is_usable_phone(phone))
           OR (email IS NOT NULL AND btrim(email) = '')
           OR (email = calsync.placeholder_email(id) AND NOT email_is_placeholder));
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.placeholder_email_backfill_batch(bigint, integer) IS
    'One batch of the placeholder-email backfill: customers with id in (after_id, returned id]; NULL when done.';

-- What the worker reads to sync appointments: one calsync.appointment_sync_state per id (the Python twin is
-- worker/sync/contract.py SyncState). An id whose appointment no longer exists comes back deleted, with what
-- Cal.com still has for it. Read with the caller's rights (the worker role may read these tables).
CREATE OR REPLACE FUNCTION calsync.appointment_sync_state(p_ids bigint[])
RETURNS SETOF calsync.appointment_sync_state
LANGUAGE sql STABLE AS $$
    SELECT ROW(
        x.id, a.id IS NULL, CASE WHEN a.id IS NULL THEN 'cancelled' ELSE a.status END, a.starts_at, a.ends_at,
        coalesce(a.is_composite, false), a.booking_timezone, a.staff_id, a.calcom_v2_booking_uid,
        a.calcom_sync_status,
        -- the times the appointment had in its undelivered events (where an earlier attempt may have booked it)
        coalesce((SELECT array_agg(DISTINCT (o.payload->>'starts_at')::timestamptz) FROM calsync.outbox o
                  WHERE a.id IS NOT NULL AND o.aggregateid = a.id::text AND o.payload ? 'starts_at'), '{}'),
        -- a host conflict listed as a known issue (grandfathered by the rules' pre-flight, or flagged by the
        -- runbook) that still exists: not synced until the business reschedules one of the bookings
        CASE WHEN EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'host_busy_time_no_overlap' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL)
            THEN (SELECT h.other_id FROM remediation.host_conflicts_of(a.id) AS h LIMIT 1) END,
        CASE WHEN c.id IS NOT NULL THEN ROW(
            c.id, c.name, c.email, c.phone, coalesce(c.email_is_placeholder, false), calsync.is_usable_email(c.email),
            calsync.is_usable_phone(c.phone))::calsync.sync_customer END,
        CASE WHEN s.id IS NOT NULL THEN ROW(s.id, s.name, s.calcom_event_type_id)::calsync.sync_service END,
        coalesce((
            SELECT array_agg(ROW(p.id, p.sequence_order, p.segment_key, p.segment_name, p.staff_required,
                                 p.start_time, p.end_time, p.calcom_booking_uid, p.calcom_booking_id,
                                 p.calcom_sync_status)::calsync.sync_phase ORDER BY p.sequence_order, p.id)
            FROM appointment_phases p WHERE p.appointment_id = a.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(m.segment_key, coalesce(m.child_event_type_id, m.event_type_id))
                             ::calsync.sync_segment_event_type ORDER BY m.segment_key)
            FROM calcom_event_map m
            WHERE m.service_id = a.service_id AND m.staff_id = a.staff_id
              AND coalesce(m.child_event_type_id, m.event_type_id) IS NOT NULL), '{}'),
        coalesce((
            SELECT array_agg(ROW(b.slot, b.uid, b.booking_id, b.start_at, b.end_at, b.event_type_id)
                             ::calsync.sync_known_booking ORDER BY b.slot)
            FROM calsync.synced_bookings b WHERE b.appointment_id = x.id), '{}'),
        coalesce((
            SELECT array_agg(ROW(sp.id, sp.phase_id, sp.calcom_booking_uid)::calsync.sync_superseded_booking
                             ORDER BY sp.id)
            FROM calsync.superseded_phases sp
            WHERE sp.appointment_id = a.id AND sp.calcom_booking_uid IS NOT NULL AND sp.calcom_cancelled_at IS NULL),
            '{}'),
        (SELECT i.detail FROM calsync.integrity_issues i
         WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
           AND i.resolved_at IS NULL LIMIT 1),
        EXISTS (
            SELECT 1 FROM calsync.integrity_issues i
            WHERE i.rule = 'appointments_composite_has_phases' AND i.table_name = 'appointments' AND i.row_id = a.id
              AND i.resolved_at IS NULL)
    )::calsync.appointment_sync_state
    FROM unnest(p_ids) AS x(id)
    LEFT JOIN appointments a ON a.id = x.id
    LEFT JOIN customers c ON c.id = a.customer_id
    LEFT JOIN services s ON s.id = a.service_id
$$;
COMMENT ON FUNCTION calsync.appointment_sync_state(bigint[]) IS
    'What the worker needs to sync these appointments, one calsync.appointment_sync_state each (deleted ones too).';

-- name: drop
DROP FUNCTION calsync.tg_customers__resolve_changed_contact_findings();
DROP FUNCTION calsync.resolve_contact_finding(bigint, text, timestamptz);
DROP FUNCTION calsync.record_contact_finding(bigint, text, text, text, timestamptz);
DROP FUNCTION calsync.has_email(text);
DROP TABLE calsync.company_settings;
REVOKE SELECT ON calsync.settings FROM calsync_worker;
