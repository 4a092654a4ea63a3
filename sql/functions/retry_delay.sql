-- Exponential backoff with jitter and a cap: base * 2^(attempts-1), capped, times a factor in [0.75, 1.25).
CREATE OR REPLACE FUNCTION calsync.retry_delay(p_attempts integer, p_base interval DEFAULT '5 seconds',
                                              p_cap interval DEFAULT '1 hour') RETURNS interval
LANGUAGE sql VOLATILE AS $$
    SELECT least(p_base * power(2, greatest(p_attempts - 1, 0))::double precision, p_cap) * (0.75 + random() / 2)
$$;
COMMENT ON FUNCTION calsync.retry_delay(integer, interval, interval) IS
    'Backoff before the next attempt: exponential in the attempts so far, capped, with +-25% jitter.';
