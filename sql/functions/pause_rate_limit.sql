-- Cal.com answered 429 (or said the window is used up): no worker gets a slot of this key for p_seconds.
-- Slots already handed out are not taken back; a worker learns of the pause with its next batch of slots.
CREATE OR REPLACE FUNCTION calsync.pause_rate_limit(p_worker text, p_key_ref text, p_seconds double precision,
                                                   p_reason text, p_now timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_until timestamptz := p_now + least(greatest(coalesce(p_seconds, 60), 0), 300) * interval '1 second';
BEGIN
    PERFORM calsync.authenticate_worker('calsync.pause_rate_limit', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.pause_rate_limit', p_now);
    INSERT INTO calsync.rate_limits AS r (key_ref, next_slot_at, paused_until, pauses, last_pause_reason, updated_at)
    VALUES (p_key_ref, v_until, v_until, 1, left(p_reason, 200), p_now)
    ON CONFLICT (key_ref) DO UPDATE
        SET paused_until = greatest(r.paused_until, excluded.paused_until),
            next_slot_at = greatest(r.next_slot_at, excluded.paused_until),
            pauses = r.pauses + 1, last_pause_reason = excluded.last_pause_reason, updated_at = p_now
    RETURNING r.paused_until INTO v_until;
    RETURN v_until;
END
$$;
COMMENT ON FUNCTION calsync.pause_rate_limit(text, text, double precision, text, timestamptz) IS
    'Pause a key for every worker (a 429: Cal.com blocks the key), at most 300 s; returns until when.';
