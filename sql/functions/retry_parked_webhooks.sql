-- Try parked deliveries again: those due (next_attempt_at <= p_now), or, with p_waiting_for, those waiting for
-- that booking uid (whatever their time). Oldest first by Cal.com's createdAt, so a chain applies in order; rows
-- another session is applying are skipped. Returns how many left the parked state. The receiver calls it on a
-- timer (CALSYNC_WEBHOOK_RETRY_S); calsync.apply_webhook calls it for the booking a delivery settled.
CREATE OR REPLACE FUNCTION calsync.retry_parked_webhooks(p_now timestamptz DEFAULT now(), p_waiting_for text DEFAULT NULL,
                                                        p_limit integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_id bigint;
    v_ids bigint[];
    v_outcome text;
    v_settled integer := 0;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.retry_parked_webhooks: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    -- two queries, not one with a CASE: each is planned on its own partial index (parked_due, parked_waiting);
    -- the CASE's generic plan could use neither and read every parked row on each call
    IF p_waiting_for IS NULL THEN
        v_ids := ARRAY(SELECT d.id FROM calsync.webhook_deliveries d
                       WHERE d.outcome = 'parked' AND d.next_attempt_at <= p_now
                       ORDER BY (d.event).created_at NULLS LAST, d.id
                       LIMIT p_limit
                       FOR UPDATE SKIP LOCKED);
    ELSE
        v_ids := ARRAY(SELECT d.id FROM calsync.webhook_deliveries d
                       WHERE d.outcome = 'parked' AND d.waiting_for = p_waiting_for
                       ORDER BY (d.event).created_at NULLS LAST, d.id
                       LIMIT p_limit
                       FOR UPDATE SKIP LOCKED);
    END IF;
    FOREACH v_id IN ARRAY v_ids
    LOOP
        SELECT r.outcome INTO v_outcome FROM calsync.apply_webhook(v_id, p_now) r;
        IF v_outcome <> 'parked' THEN
            v_settled := v_settled + 1;
        END IF;
    END LOOP;
    RETURN v_settled;
END
$$;
COMMENT ON FUNCTION calsync.retry_parked_webhooks(timestamptz, text, integer) IS
    'Apply parked Cal.com deliveries again (due ones, or those waiting for one booking uid); returns how many settled.';
