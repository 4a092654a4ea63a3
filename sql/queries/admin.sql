-- Queries of the admin commands (adopt, demo summary).

-- name: adopt_columns
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = ANY(%(tables)s)
ORDER BY table_name, ordinal_position;

-- name: preflight_count
-- {violators} is a pre-flight check's query (from a revision's PREFLIGHT), returning (id, detail).
SELECT count(*), (array_agg(id ORDER BY id))[1:10] FROM ({violators}) AS v;
