-- One rate limit per Cal.com key, shared by every worker process and host (calsync.rate_limits, one row per
-- key_ref): a schedule of request slots p_window / p_limit apart (GCRA). A worker asks for the slots its
-- waiting requests need and gets consecutive ones after every slot already handed out, no earlier than a pause
-- (a 429 seen by any worker: calsync.pause_rate_limit). Slots are disjoint, so all workers together send at
-- most p_limit per p_window per key, plus one: a key idle for a moment may send two requests at once (its first
-- slot may lie one spacing in the past), so a booking whose event type must be read first is not delayed by the
-- spacing. The worker paces at 117 for Cal.com's 120, which leaves room for that one. Nothing is granted beyond
-- p_max_ahead from now: the answer then says how long until the next free slot (the worker gives its work back).
-- Returns the slots granted, the first one's start in seconds from now (negative: at once), the spacing, and the
-- pause left.
CREATE OR REPLACE FUNCTION calsync.take_rate_slots(p_worker text, p_key_ref text, p_want integer, p_limit integer,
                                                  p_window interval, p_max_ahead interval,
                                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (granted integer, first_in_s double precision, spacing_s double precision,
               paused_for_s double precision)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_spacing interval := p_window / greatest(p_limit, 1);
    v_row calsync.rate_limits;
    v_start timestamptz;
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.take_rate_slots', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.take_rate_slots', p_now);
    INSERT INTO calsync.rate_limits AS r (key_ref, next_slot_at, rate_limit, rate_window, updated_at)
    VALUES (p_key_ref, p_now, p_limit, p_window, p_now)
    ON CONFLICT (key_ref) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING * INTO v_row;
    v_start := greatest(p_now - v_spacing, v_row.next_slot_at, coalesce(v_row.paused_until, p_now - v_spacing));
    v_n := CASE WHEN v_start > p_now + p_max_ahead THEN 0
                ELSE least(greatest(p_want, 0),
                           1 + floor(extract(epoch FROM p_now + p_max_ahead - v_start) / extract(epoch FROM v_spacing))::int)
           END;
    UPDATE calsync.rate_limits r
    SET next_slot_at = CASE WHEN v_n > 0 THEN v_start + v_n * v_spacing ELSE r.next_slot_at END,
        rate_limit = p_limit, rate_window = p_window,
        granted = r.granted + v_n,
        delayed = r.delayed + CASE WHEN v_n > 0 AND v_start > p_now THEN 1 ELSE 0 END,
        refused = r.refused + CASE WHEN v_n = 0 AND p_want > 0 THEN 1 ELSE 0 END,
        wait_s = r.wait_s + CASE WHEN v_n > 0 THEN greatest(0, extract(epoch FROM v_start - p_now)) ELSE 0 END
    WHERE r.key_ref = p_key_ref;
    RETURN QUERY SELECT v_n, extract(epoch FROM v_start - p_now)::double precision,
                        extract(epoch FROM v_spacing)::double precision,
                        greatest(0, extract(epoch FROM coalesce(v_row.paused_until, p_now) - p_now))::double precision;
END
$$;
COMMENT ON FUNCTION calsync.take_rate_slots(text, text, integer, integer, interval, interval, timestamptz) IS
    'Hand out up to p_want request slots of a key''s shared schedule (p_limit per p_window for all workers), none beyond p_max_ahead; one call per batch of requests.';
