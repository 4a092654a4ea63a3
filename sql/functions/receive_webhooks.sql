-- Several authentic deliveries in one call and one commit (the receiver groups the deliveries that arrive while
-- its connections are busy: one commit, one WAL flush for all of them, as PostgreSQL's group commit would).
-- p_deliveries is a JSON array of {event, body, headers, signature}; each element goes through
-- calsync.receive_webhook in order, so the result is the same as one call each. Returns one row per element,
-- with its place (ord, from 1) in the array. An error aborts the whole call: the receiver then sends the deliveries
-- one at a time, so one bad delivery never holds up the others.
CREATE OR REPLACE FUNCTION calsync.receive_webhooks(p_deliveries jsonb, p_now timestamptz DEFAULT now())
RETURNS TABLE (ord bigint, delivery_id bigint, outcome text, detail text, appointment_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_item jsonb;
    v_ord bigint;
BEGIN
    -- SECURITY DEFINER for the receiver's role (sql/grants/webhooks.sql): it runs on the database's time only
    IF p_now IS DISTINCT FROM now() AND NOT calsync.caller_is_admin() THEN
        RAISE EXCEPTION 'calsync.receive_webhooks: a time of the caller''s (%) is refused: deliveries are stored on the database''s time', p_now
            USING ERRCODE = '42501';
    END IF;
    FOR v_item, v_ord IN SELECT x.value, x.ordinality FROM jsonb_array_elements(p_deliveries) WITH ORDINALITY AS x LOOP
        RETURN QUERY SELECT v_ord, r.delivery_id, r.outcome, r.detail, r.appointment_id
                     FROM calsync.receive_webhook(v_item->'event', v_item->>'body', v_item->'headers',
                                                  v_item->>'signature', p_now) r;
    END LOOP;
END
$$;
COMMENT ON FUNCTION calsync.receive_webhooks(jsonb, timestamptz) IS
    'Store and apply several Cal.com deliveries in one call and one commit, each as calsync.receive_webhook would.';
