-- Statuses the app books with; only these are synced to Cal.com (in_progress/completed already happened).
CREATE OR REPLACE FUNCTION calsync.is_bookable_status(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_status IN ('pending', 'confirmed', 'scheduled', 'booked')
$$;
COMMENT ON FUNCTION calsync.is_bookable_status(text) IS
    'true for the statuses an appointment is synced to Cal.com in: pending, confirmed, scheduled, booked.';
