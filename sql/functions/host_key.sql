-- Who is busy: the host is the Cal.com user when the staff row has one, else the staff row itself,
-- because one person can have two staff rows (the app's Fabian Spitzer).
CREATE OR REPLACE FUNCTION calsync.host_key(p_calcom_user_id bigint, p_staff_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- text || text (immutable), not text || bigint (anytextcat is only stable): so the planner inlines it
    SELECT CASE WHEN p_calcom_user_id IS NOT NULL THEN 'calcom_user:' || p_calcom_user_id::text
                WHEN p_staff_id IS NOT NULL THEN 'staff:' || p_staff_id::text END
$$;
COMMENT ON FUNCTION calsync.host_key(bigint, uuid) IS
    'calcom_user:<id> when the staff row has a Cal.com user, else staff:<uuid>; NULL without staff.';
