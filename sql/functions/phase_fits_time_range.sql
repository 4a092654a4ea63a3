-- timestamptz ends at 294276-12-31 23:59:59.999999 UTC: phases placed past it (or before its start) cannot
-- be stored. Compared as epoch seconds in numeric, so the check itself never overflows.
CREATE OR REPLACE FUNCTION calsync.phase_fits_time_range(p_start timestamptz, p_offset_minutes bigint,
                                                        p_duration_minutes bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT isfinite(p_start)
           OR (extract(epoch FROM p_start) + 60 * least(p_offset_minutes, p_offset_minutes + p_duration_minutes)
                   >= -210866803200
               AND extract(epoch FROM p_start) + 60 * greatest(p_offset_minutes, p_offset_minutes + p_duration_minutes)
                   < 9224318016000)
$$;
COMMENT ON FUNCTION calsync.phase_fits_time_range(timestamptz, bigint, bigint) IS
    'true when a phase at start + offset lasting duration minutes begins and ends within timestamptz''s range (an infinite start stays infinite).';
