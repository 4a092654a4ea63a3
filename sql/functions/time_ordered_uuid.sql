-- A UUID whose first 48 bits are the milliseconds since 1970 (the layout of RFC 9562's version 7; the rest is
-- gen_random_uuid()'s randomness, its version nibble set to 7): ids made one after another sort one after
-- another, so the outbox's and the delivery state's primary keys take each new id on the same few pages
-- instead of a random one (each first touch of a page after a checkpoint writes the whole page to the WAL).
CREATE OR REPLACE FUNCTION calsync.time_ordered_uuid() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                                          PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                                                            FROM 3)
                                          FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;
COMMENT ON FUNCTION calsync.time_ordered_uuid() IS
    'A time-ordered UUID (version 7 layout: 48 bits of Unix milliseconds, then random bits): the outbox''s ids.';
