-- Backfill in batches (by id): touching email fires the trigger customers_fill_placeholder_email
-- (sql/triggers/customers__fill_placeholder_email.sql), the one place the rule lives.
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
           OR (email IS NOT NULL AND calsync.is_blank(email))
           OR (email = calsync.placeholder_email(id) AND NOT email_is_placeholder));
    RETURN v_last;
END
$$;
COMMENT ON FUNCTION calsync.placeholder_email_backfill_batch(bigint, integer) IS
    'One batch of the placeholder-email backfill: customers with id in (after_id, returned id]; NULL when done.';
