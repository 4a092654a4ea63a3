-- The host as a bigint, the key of calsync.host_busy_time: the Cal.com user id when the staff row has one
-- (so one person on two staff rows is one host), else a negative number derived from the staff row's uuid
-- (uuid_hash_extended: stable, hash partitioning relies on it). Two staff rows can only share a key by a
-- 63-bit hash collision, which would refuse too much, never too little; revision 0019 checks for one.
-- A bigint because btree_gist compares it in one instruction: the text key it replaces cost ~10x per insert.
CREATE OR REPLACE FUNCTION calsync.host_id(p_calcom_user_id bigint, p_staff_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_calcom_user_id IS NOT NULL THEN p_calcom_user_id
                WHEN p_staff_id IS NOT NULL THEN -1 - (uuid_hash_extended(p_staff_id, 0) & 9223372036854775807) END
$$;
COMMENT ON FUNCTION calsync.host_id(bigint, uuid) IS
    'The host key of calsync.host_busy_time: the Cal.com user id, else a negative hash of the staff row; NULL without staff.';
