-- Queries of the admin commands (adopt, demo summary).

-- name: adopt_columns
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = ANY(%(tables)s)
ORDER BY table_name, ordinal_position;

-- name: preflight_count
-- {violators} is a pre-flight check's query (from a revision's PREFLIGHT), returning (id, detail).
SELECT count(*), (array_agg(id ORDER BY id))[1:10] FROM ({violators}) AS v;

-- name: simulator_event_types
-- The Cal.com event types our data books, for registering them with the simulator: each service's own
-- (its host: a stand-in user per event type) and each mapped segment's (child first; the host is the
-- staff's Cal.com user, so one person's two staff rows share a calendar), with the segment's length.
SELECT jsonb_build_object('id', s.calcom_event_type_id, 'lengthInMinutes', s.duration_minutes,
                          'hostUserId', s.calcom_event_type_id, 'title', s.name) AS event_type
FROM services s WHERE s.calcom_event_type_id IS NOT NULL
UNION ALL
SELECT DISTINCT ON (coalesce(m.child_event_type_id, m.event_type_id))
       jsonb_build_object('id', coalesce(m.child_event_type_id, m.event_type_id),
                          'lengthInMinutes', d.duration_minutes,
                          'hostUserId', coalesce(st.calcom_user_id, abs(hashtext(st.id::text)) + 1),
                          'title', s.name || ' - ' || coalesce(d.segment_name, d.segment_key),
                          'hostName', st.name)
FROM calcom_event_map m
JOIN services s ON s.id = m.service_id
JOIN staff st ON st.id = m.staff_id
JOIN LATERAL calsync.derive_phases(s.segments) AS d ON d.segment_key = m.segment_key
ORDER BY 1;
