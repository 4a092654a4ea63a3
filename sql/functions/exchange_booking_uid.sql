-- The Cal.com booking an exchange is about, for the archive (calsync.sync_attempts.booking_uid): the first
-- "uid" of the response body (a booking's data.uid: Cal.com writes id, then uid), else the uid in the path
-- (/v2/bookings/<uid>/...). Read with patterns, not a JSON cast, so a body that is no JSON reads as none.
CREATE OR REPLACE FUNCTION calsync.exchange_booking_uid(p_path text, p_body text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(substring(left(p_body, 4096) FROM '"uid"\s*:\s*"([A-Za-z0-9_-]{1,100})"'),
                    substring(p_path FROM '^/v2/bookings/([A-Za-z0-9_-]{1,100})(?:/|$)'))
$$;
COMMENT ON FUNCTION calsync.exchange_booking_uid(text, text) IS
    'The booking uid of an archived exchange: the response body''s first "uid", else the one in /v2/bookings/<uid>.';
