-- The worker's writes to appointment_phases fire the busy-time triggers, which run as the worker.
GRANT SELECT, INSERT, UPDATE, DELETE ON calsync.host_busy_time TO calsync_worker;
