-- Frozen SQL of revision 0023 (never edit; sql/ holds the current definitions).

-- name: table
CREATE TABLE calsync.rate_limits (
    key_ref            text PRIMARY KEY,
    next_slot_at       timestamptz NOT NULL,
    paused_until       timestamptz,
    rate_limit         bigint NOT NULL DEFAULT 120,
    rate_window        interval NOT NULL DEFAULT interval '60 seconds',
    granted            bigint NOT NULL DEFAULT 0,
    delayed            bigint NOT NULL DEFAULT 0,
    refused            bigint NOT NULL DEFAULT 0,
    wait_s             double precision NOT NULL DEFAULT 0,
    pauses             bigint NOT NULL DEFAULT 0,
    last_pause_reason  text,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rate_limits_key_ref_names_no_key CHECK (key_ref = 'default' OR key_ref ~ '^company:[0-9]+$')
);
COMMENT ON TABLE calsync.rate_limits IS
    'One shared request schedule per Cal.com key for every worker (calsync.take_rate_slots, calsync.pause_rate_limit).';
COMMENT ON COLUMN calsync.rate_limits.key_ref IS 'which key, by name (default, or company:<id>), never the key itself';
COMMENT ON COLUMN calsync.rate_limits.next_slot_at IS 'the first request slot not yet handed out to a worker';
COMMENT ON COLUMN calsync.rate_limits.paused_until IS 'no slot before this (Cal.com answered 429 to some worker)';
COMMENT ON CONSTRAINT rate_limits_key_ref_names_no_key ON calsync.rate_limits IS
    'A key is named (default or company:<id>), never stored: pass the key_ref, not the key.';
ALTER TABLE calsync.outbox ADD COLUMN company_id bigint;
COMMENT ON COLUMN calsync.outbox.company_id IS
    'the appointment''s company when enqueued (calsync.tg_outbox__record_company): the claim shares the work out by it';

-- name: category_rows
INSERT INTO remediation.categories
    (category, origin, retryable, requeue_when_fixed, description, recommended_action, runbook_step, sort_order, scope)
VALUES
 ('KEY_MISSING', 'worker', true, true, 'The company has no usable Cal.com key: no file of its own in CALSYNC_CREDENTIALS_DIR and no fallback key, or its key file is unusable',
  'Put the key in $CALSYNC_CREDENTIALS_DIR/<company_id>/calcom_api_key (mode 600), or set the fallback CALCOM_API_KEY; the syncs resume by themselves', 'requeue', 126, 'key')
ON CONFLICT (category) DO NOTHING;

-- name: functions
-- from: sql/functions/claim_sync_events.sql
-- from: sql/functions/take_rate_slots.sql
-- from: sql/functions/pause_rate_limit.sql
-- from: sql/functions/queue_stats_by_company.sql
-- from: sql/functions/rate_limit_stats.sql
-- Delivery of the outbox: state lives in calsync.outbox_delivery (the outbox itself stays insert-only).
-- SECURITY DEFINER: the worker's role runs these functions and reads what it syncs, nothing more.
-- A delivery row is made by the claim, one per event being worked on; on success the event, every
-- earlier event of the same appointment, and their delivery rows are deleted (the attempts archive in
-- calsync.sync_attempts is the record). Each transition is one function, in the file named after it.

-- Claim up to p_limit events, at most one per appointment, interleaving companies (fair share): an event is
-- claimable when no earlier event of its appointment is still undelivered (unless dead), and it is new or its
-- retry is due. The companies with events are found by a skip scan of outbox_company_id_seq_index (one probe
-- per company), each gives at most p_per_company of its oldest claimable events, and they are taken round by
-- round (every company's first, then every company's second, …, each round in enqueue order): a quiet
-- company's new booking is never queued behind another company's backlog. Companies in p_skip_companies are
-- left alone (the worker's: their key is paused, out of tokens or has no credentials).
-- One statement: FOR UPDATE SKIP LOCKED on the outbox rows, then INSERT … ON CONFLICT DO UPDATE … WHERE status =
-- 'retry' on the delivery row, so a racing claimer can never take an event that is running. covers_seq is the
-- appointment's newest event at claim time: the worker syncs the appointment's current state, which coalesces
-- every event up to it (create then cancel sends nothing; reschedules collapse to the last).
-- The caller must be p_worker (calsync.authenticate_worker) and, as calsync_worker, lease for at most
-- worker_max_lease at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_skip_companies bigint[], p_per_company integer,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint,
               company_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM calsync.authenticate_worker('calsync.claim_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.claim_sync_events', p_now,
                                          p_lease => coalesce(p_lease, interval '0'));
    RETURN QUERY
    WITH RECURSIVE lanes AS (  -- the companies that have events: one index probe each
        (SELECT o.company_id FROM calsync.outbox o WHERE o.company_id IS NOT NULL ORDER BY o.company_id LIMIT 1)
        UNION ALL
        SELECT (SELECT o.company_id FROM calsync.outbox o WHERE o.company_id > l.company_id
                ORDER BY o.company_id LIMIT 1)
        FROM lanes l WHERE l.company_id IS NOT NULL
    ), open_lanes AS (
        SELECT l.company_id FROM lanes l
        WHERE l.company_id IS NOT NULL AND NOT l.company_id = ANY (coalesce(p_skip_companies, '{}'))
    ), claimable AS (  -- each company's oldest claimable events
        SELECT c.id, c.seq, c.company_id
        FROM open_lanes l
        CROSS JOIN LATERAL (
            SELECT o.id, o.seq, o.company_id
            FROM calsync.outbox o
            LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
            -- a range, not =: with = the planner drops company_id from the order and may walk outbox_seq_unique
            -- filtering on the company (all of a 100,000-event backlog for a quiet company's one event)
            WHERE o.company_id BETWEEN l.company_id AND l.company_id
              AND o.aggregatetype = 'appointment'
              AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
              AND NOT EXISTS (
                  SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
                  WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
            ORDER BY o.company_id, o.seq  -- the order of outbox_company_id_seq_index
            LIMIT greatest(coalesce(p_per_company, p_limit), 1)
        ) AS c
        UNION ALL  -- events whose appointment was gone when they were enqueued (no company): a lane of their own
        SELECT * FROM (
            SELECT o.id, o.seq, o.company_id
            FROM calsync.outbox o
            LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
            WHERE o.company_id IS NULL
              AND o.aggregatetype = 'appointment'
              AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
              AND NOT EXISTS (
                  SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
                  WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
            ORDER BY o.company_id, o.seq
            LIMIT greatest(coalesce(p_per_company, p_limit), 1)
        ) AS n
    ), candidates AS (  -- round r holds every company's r-th event
        SELECT c.id, c.seq, row_number() OVER (PARTITION BY c.company_id ORDER BY c.seq) AS round FROM claimable c
    ), heads AS (
        SELECT o.id, o.aggregateid, o.type, o.company_id
        FROM calsync.outbox o JOIN candidates c ON c.id = o.id
        ORDER BY c.round, c.seq
        LIMIT p_limit
        FOR UPDATE OF o SKIP LOCKED
    ), claimed AS (
        INSERT INTO calsync.outbox_delivery AS d
            (outbox_id, aggregateid, status, attempts, locked_by, locked_until, covers_seq, next_attempt_at)
        SELECT h.id, h.aggregateid, 'running', 1, p_worker, p_now + p_lease,
               (SELECT max(x.seq) FROM calsync.outbox x WHERE x.aggregateid = h.aggregateid), p_now
        FROM heads h
        ON CONFLICT ON CONSTRAINT outbox_delivery_pkey DO UPDATE
            SET status = 'running', attempts = d.attempts + 1, locked_by = excluded.locked_by,
                locked_until = excluded.locked_until, covers_seq = excluded.covers_seq
            WHERE d.status = 'retry'
        RETURNING d.outbox_id, d.aggregateid, d.attempts, d.covers_seq
    )
    SELECT c.outbox_id, c.aggregateid::bigint, h.type, c.attempts, c.covers_seq, h.company_id
    FROM claimed c JOIN heads h ON h.id = c.outbox_id;
END
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, bigint[], integer, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment and p_per_company per company, companies interleaved, p_skip_companies left alone (one statement, SKIP LOCKED).';

-- The claim of workers before revision 0023 (one key for every company): the same claim, no company left out.
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.outbox_id, c.appointment_id, c.event_type, c.attempts, c.covers_seq
    FROM calsync.claim_sync_events(p_worker, p_limit, p_lease, '{}'::bigint[], p_limit, p_now) AS c
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment, companies interleaved (the claim of workers before revision 0023).';

-- One rate limit per Cal.com key, shared by every worker process and host (calsync.rate_limits, one row per
-- key_ref): a schedule of request slots p_window / p_limit apart (GCRA). A worker asks for the slots its
-- waiting requests need and gets consecutive ones after every slot already handed out, no earlier than a pause
-- (a 429 seen by any worker: calsync.pause_rate_limit). Slots are disjoint, so all workers together send at
-- most p_limit per p_window per key, plus one: a key idle for a moment may send two requests at once (its first
-- slot may lie one spacing in the past), so a booking whose event type must be read first is not delayed by the
-- spacing. The worker paces at 117 for Cal.com's 120, which leaves room for that one. Nothing is granted beyond
-- p_max_ahead from now: the answer then says how long until the next free slot (the worker gives its work back).
-- Returns the slots granted, the first one's start in seconds from now (negative: at once), the spacing, and the
-- pause left.
CREATE OR REPLACE FUNCTION calsync.take_rate_slots(p_worker text, p_key_ref text, p_want integer, p_limit integer,
                                                  p_window interval, p_max_ahead interval,
                                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (granted integer, first_in_s double precision, spacing_s double precision,
               paused_for_s double precision)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_spacing interval := p_window / greatest(p_limit, 1);
    v_row calsync.rate_limits;
    v_start timestamptz;
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.take_rate_slots', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.take_rate_slots', p_now);
    INSERT INTO calsync.rate_limits AS r (key_ref, next_slot_at, rate_limit, rate_window, updated_at)
    VALUES (p_key_ref, p_now, p_limit, p_window, p_now)
    ON CONFLICT (key_ref) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING * INTO v_row;
    v_start := greatest(p_now - v_spacing, v_row.next_slot_at, coalesce(v_row.paused_until, p_now - v_spacing));
    v_n := CASE WHEN v_start > p_now + p_max_ahead THEN 0
                ELSE least(greatest(p_want, 0),
                           1 + floor(extract(epoch FROM p_now + p_max_ahead - v_start) / extract(epoch FROM v_spacing))::int)
           END;
    UPDATE calsync.rate_limits r
    SET next_slot_at = CASE WHEN v_n > 0 THEN v_start + v_n * v_spacing ELSE r.next_slot_at END,
        rate_limit = p_limit, rate_window = p_window,
        granted = r.granted + v_n,
        delayed = r.delayed + CASE WHEN v_n > 0 AND v_start > p_now THEN 1 ELSE 0 END,
        refused = r.refused + CASE WHEN v_n = 0 AND p_want > 0 THEN 1 ELSE 0 END,
        wait_s = r.wait_s + CASE WHEN v_n > 0 THEN greatest(0, extract(epoch FROM v_start - p_now)) ELSE 0 END
    WHERE r.key_ref = p_key_ref;
    RETURN QUERY SELECT v_n, extract(epoch FROM v_start - p_now)::double precision,
                        extract(epoch FROM v_spacing)::double precision,
                        greatest(0, extract(epoch FROM coalesce(v_row.paused_until, p_now) - p_now))::double precision;
END
$$;
COMMENT ON FUNCTION calsync.take_rate_slots(text, text, integer, integer, interval, interval, timestamptz) IS
    'Hand out up to p_want request slots of a key''s shared schedule (p_limit per p_window for all workers), none beyond p_max_ahead; one call per batch of requests.';

-- Cal.com answered 429 (or said the window is used up): no worker gets a slot of this key for p_seconds.
-- Slots already handed out are not taken back; a worker learns of the pause with its next batch of slots.
CREATE OR REPLACE FUNCTION calsync.pause_rate_limit(p_worker text, p_key_ref text, p_seconds double precision,
                                                   p_reason text, p_now timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_until timestamptz := p_now + least(greatest(coalesce(p_seconds, 60), 0), 300) * interval '1 second';
BEGIN
    PERFORM calsync.authenticate_worker('calsync.pause_rate_limit', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.pause_rate_limit', p_now);
    INSERT INTO calsync.rate_limits AS r (key_ref, next_slot_at, paused_until, pauses, last_pause_reason, updated_at)
    VALUES (p_key_ref, v_until, v_until, 1, left(p_reason, 200), p_now)
    ON CONFLICT (key_ref) DO UPDATE
        SET paused_until = greatest(r.paused_until, excluded.paused_until),
            next_slot_at = greatest(r.next_slot_at, excluded.paused_until),
            pauses = r.pauses + 1, last_pause_reason = excluded.last_pause_reason, updated_at = p_now
    RETURNING r.paused_until INTO v_until;
    RETURN v_until;
END
$$;
COMMENT ON FUNCTION calsync.pause_rate_limit(text, text, double precision, text, timestamptz) IS
    'Pause a key for every worker (a 429: Cal.com blocks the key), at most 300 s; returns until when.';

-- The queue per company, for the worker's metrics and `calsync status` (the worker cannot read the delivery
-- table): undelivered events, those leased now, dead ones, those held because the company's key is missing or
-- refused (calsync.key_problems, last category of a paused try), and the oldest undelivered event's age.
CREATE OR REPLACE FUNCTION calsync.queue_stats_by_company(p_now timestamptz DEFAULT now())
RETURNS TABLE (company_id bigint, depth bigint, running bigint, dead bigint, held bigint,
               oldest_pending_s numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.company_id,
           count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
           count(*) FILTER (WHERE d.status = 'running'),
           count(*) FILTER (WHERE d.status = 'dead'),
           count(*) FILTER (WHERE d.status = 'retry' AND k.scope = 'key'),
           coalesce(extract(epoch FROM p_now - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead')), 0)
    FROM calsync.outbox o
    LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
    LEFT JOIN remediation.categories k ON k.category = d.last_category
    GROUP BY o.company_id
    ORDER BY o.company_id
$$;
COMMENT ON FUNCTION calsync.queue_stats_by_company(timestamptz) IS
    'Per company: undelivered, leased, dead and held (key missing or refused) events, and the oldest undelivered event''s age in seconds.';

-- The shared rate limits, one row per key (never the key itself: key_ref is 'default' or 'company:<id>'):
-- slots handed out, batches that had to wait and for how long in total, batches refused (the schedule was full
-- beyond the worker's wait), pauses (429s) and whether the key is paused now.
CREATE OR REPLACE FUNCTION calsync.rate_limit_stats(p_now timestamptz DEFAULT now())
RETURNS TABLE (key_ref text, rate_limit bigint, rate_window_s double precision, granted bigint, delayed bigint,
               refused bigint, wait_s double precision, pauses bigint, paused_for_s double precision,
               last_pause_reason text, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT r.key_ref, r.rate_limit, extract(epoch FROM r.rate_window)::double precision, r.granted, r.delayed,
           r.refused, r.wait_s, r.pauses,
           greatest(0, extract(epoch FROM coalesce(r.paused_until, p_now) - p_now))::double precision,
           r.last_pause_reason, r.updated_at
    FROM calsync.rate_limits r
    ORDER BY r.key_ref
$$;
COMMENT ON FUNCTION calsync.rate_limit_stats(timestamptz) IS
    'The shared per-key rate limits: slots granted, waits, refusals, 429 pauses and the pause left (key_ref only, never a key).';

-- name: trigger
-- from: sql/triggers/outbox__record_company.sql
-- Each outbox event carries its appointment's company (calsync.outbox.company_id), so that the claim can share
-- the work out between companies (calsync.claim_sync_events) without reading the appointments. One primary-key
-- lookup per event, in the booking's transaction; an event whose appointment is gone gets none.
CREATE OR REPLACE FUNCTION calsync.tg_outbox__record_company() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.company_id IS NULL AND NEW.aggregatetype = 'appointment' THEN
        NEW.company_id := (SELECT a.company_id FROM appointments a WHERE a.id = NEW.aggregateid::bigint);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION calsync.tg_outbox__record_company() IS
    'Trigger outbox_record_company: an event carries its appointment''s company (the claim''s fair share).';

CREATE OR REPLACE TRIGGER outbox_record_company
    BEFORE INSERT ON calsync.outbox
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_outbox__record_company();

-- name: view
-- from: sql/views/remediation/sync_health.sql
-- The dashboard, as one row. Thresholds are calsync.settings (health_*):
--   CRITICAL: failed syncs >= health_failed_critical (default 10), or the 24 h success rate is below
--             health_success_rate_critical (default 0.8) with at least 10 attempts;
--             or Cal.com refuses a key (calsync.key_problems: bad key, wrong base URL), or a company has no
--             usable key of its own nor the fallback (KEY_MISSING: its syncs are held);
--   DEGRADED: any failed sync, dead event, failure older than 24 h, or pending sync older than 1 h;
--   HEALTHY:  none of these.
CREATE OR REPLACE VIEW remediation.sync_health AS
WITH t AS (
    SELECT
        (SELECT value::int FROM calsync.settings WHERE key = 'health_failed_critical') AS failed_critical,
        (SELECT value::numeric FROM calsync.settings WHERE key = 'health_success_rate_critical') AS rate_critical
), n AS MATERIALIZED (  -- each count once (inlined, every use would count again)
    SELECT
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show'))::int AS pending,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed')::int AS failed,
        (SELECT count(*) FROM appointments WHERE requires_manual_review)::int AS manual_review,
        (SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'dead')::int AS dead_events,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed'
            AND coalesce(last_sync_attempt_at, manual_review_flagged_at, updated_at) < now() - interval '24 hours')::int
            AS ancient_failures,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show')
            AND coalesce(last_sync_attempt_at, created_at) < now() - interval '1 hour')::int AS stale_pending,
        h.attempted_24h,
        h.synced_24h,
        (SELECT count(*) FROM calsync.integrity_issues WHERE resolved_at IS NULL)::int AS integrity_issues
    FROM (  -- one index-only pass (remediation_appointments_last_sync_attempt_index includes the status)
        SELECT count(*)::int AS attempted_24h, count(*) FILTER (WHERE calcom_sync_status = 'synced')::int AS synced_24h
        FROM appointments WHERE last_sync_attempt_at > now() - interval '24 hours'
    ) AS h
), a AS (
    SELECT n.*, t.*,
           CASE WHEN n.attempted_24h > 0 THEN round(100.0 * n.synced_24h / n.attempted_24h, 2) END AS success_rate_24h,
           array_remove(ARRAY[
               CASE WHEN n.failed >= t.failed_critical
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs (threshold ' || t.failed_critical || ')') END,
               CASE WHEN n.attempted_24h >= 10 AND n.synced_24h < t.rate_critical * n.attempted_24h
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'success_rate', 'count', n.attempted_24h - n.synced_24h,
                         'message', 'success rate ' || round(100.0 * n.synced_24h / n.attempted_24h, 2) || ' % over 24 h (threshold '
                                    || round(100 * t.rate_critical) || ' %)') END,
               CASE WHEN n.failed > 0 AND n.failed < t.failed_critical
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs') END,
               CASE WHEN n.dead_events > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'dead_events', 'count', n.dead_events,
                         'message', n.dead_events || ' outbox events given up on') END,
               CASE WHEN n.ancient_failures > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'ancient_failures', 'count', n.ancient_failures,
                         'message', n.ancient_failures || ' failures older than 24 h') END,
               CASE WHEN n.stale_pending > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'stale_pending', 'count', n.stale_pending,
                         'message', n.stale_pending || ' syncs pending for more than 1 h') END
           ], NULL) || ARRAY(  -- a refused key pauses every sync that uses it
               SELECT jsonb_build_object('severity', 'critical',
                      'alert', CASE WHEN k.category = 'KEY_MISSING' THEN 'key_missing' ELSE 'key_refused' END,
                      'count', 1, 'key_ref', k.key_ref,
                      'message', CASE WHEN k.category = 'KEY_MISSING'
                                      THEN 'No usable Cal.com key for ' || k.key_ref || ' since '
                                           || to_char(k.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                                           || ' UTC: ' || k.message || '; its syncs are held (no attempt counted) '
                                           || 'and resume by themselves once the key file is there'
                                      ELSE 'Cal.com refuses key ' || k.key_ref || ' (' || k.category || ') since '
                                           || to_char(k.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                                           || ' UTC: ' || k.message
                                           || '; its syncs wait and resume by themselves once it works' END)
               FROM calsync.key_problems k WHERE k.resolved_at IS NULL ORDER BY k.key_ref) AS alerts
    FROM n, t
), per_company AS (  -- the figures per company (outbox events carry theirs since revision 0023)
    SELECT x.company_id,
           sum(x.pending)::int AS pending, sum(x.failed)::int AS failed, sum(x.depth)::int AS outbox_depth,
           sum(x.dead)::int AS dead_events, sum(x.held)::int AS held,
           round(max(x.oldest_pending_s), 1) AS oldest_pending_s
    FROM (
        SELECT a.company_id, count(*) FILTER (WHERE a.calcom_sync_status = 'pending') AS pending,
               count(*) FILTER (WHERE a.calcom_sync_status = 'failed') AS failed,
               0 AS depth, 0 AS dead, 0 AS held, NULL::numeric AS oldest_pending_s
        FROM appointments a
        WHERE a.calcom_sync_status IN ('pending', 'failed') AND a.status NOT IN ('cancelled', 'no_show')
        GROUP BY a.company_id
        UNION ALL
        SELECT o.company_id, 0, 0, count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
               count(*) FILTER (WHERE d.status = 'dead'), count(*) FILTER (WHERE d.status = 'retry' AND k.scope = 'key'),
               extract(epoch FROM now() - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead'))
        FROM calsync.outbox o
        LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
        LEFT JOIN remediation.categories k ON k.category = d.last_category
        GROUP BY o.company_id
    ) AS x
    GROUP BY x.company_id
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical') THEN 'CRITICAL'
            WHEN cardinality(a.alerts) > 0 THEN 'DEGRADED' ELSE 'HEALTHY' END AS health,
       a.success_rate_24h, a.attempted_24h, a.pending, a.failed, a.manual_review, a.dead_events,
       a.ancient_failures, a.stale_pending, a.integrity_issues,
       (SELECT count(*) FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical')::int AS critical_alerts,
       to_jsonb(a.alerts) AS alerts,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'company_id', c.company_id, 'pending', c.pending, 'failed', c.failed,
                    'outbox_depth', c.outbox_depth, 'dead_events', c.dead_events, 'held', c.held,
                    'oldest_pending_s', c.oldest_pending_s,
                    'key_problem', (SELECT k.category FROM calsync.key_problems k
                                    WHERE k.resolved_at IS NULL AND k.key_ref = 'company:' || c.company_id))
                ORDER BY c.company_id), '[]'::jsonb)
        FROM per_company c) AS companies
FROM a;
COMMENT ON VIEW remediation.sync_health IS
    'The sync dashboard in one row. CRITICAL: failed >= health_failed_critical (10), 24 h success rate < health_success_rate_critical (80 %) or a key refused by Cal.com; DEGRADED: any failure, dead event, failure older than 24 h or pending older than 1 h; else HEALTHY.';
COMMENT ON COLUMN remediation.sync_health.health IS 'HEALTHY, DEGRADED or CRITICAL (thresholds in the view comment and calsync.settings)';
COMMENT ON COLUMN remediation.sync_health.success_rate_24h IS 'percent of appointments attempted in the last 24 h that are synced';
COMMENT ON COLUMN remediation.sync_health.attempted_24h IS 'appointments with a sync attempt in the last 24 h';
COMMENT ON COLUMN remediation.sync_health.pending IS 'live appointments waiting to sync';
COMMENT ON COLUMN remediation.sync_health.failed IS 'appointments whose sync failed';
COMMENT ON COLUMN remediation.sync_health.manual_review IS 'appointments flagged for a person';
COMMENT ON COLUMN remediation.sync_health.dead_events IS 'outbox events given up on';
COMMENT ON COLUMN remediation.sync_health.ancient_failures IS 'failed syncs whose last attempt is older than 24 h';
COMMENT ON COLUMN remediation.sync_health.stale_pending IS 'syncs pending for more than 1 h';
COMMENT ON COLUMN remediation.sync_health.integrity_issues IS 'open rows of calsync.integrity_issues';
COMMENT ON COLUMN remediation.sync_health.critical_alerts IS 'how many alerts are critical';
COMMENT ON COLUMN remediation.sync_health.alerts IS 'active alerts: [{severity, alert, count, message}]';
COMMENT ON COLUMN remediation.sync_health.companies IS
    'per company: [{company_id, pending, failed, outbox_depth, dead_events, held, oldest_pending_s, key_problem}]';

-- name: grants
-- from: sql/grants/multi_company.sql
-- Grants of the multi-company functions (revision 0023): the worker takes and pauses the shared rate limits and
-- reads the queue per company, through SECURITY DEFINER functions (calsync.rate_limits is the functions' own: a worker
-- changes it only by asking for slots or pausing a key; its figures come from calsync.rate_limit_stats).
REVOKE ALL ON calsync.rate_limits FROM calsync_worker;
GRANT EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, bigint[], integer, timestamptz),
    calsync.take_rate_slots(text, text, integer, integer, interval, interval, timestamptz),
    calsync.pause_rate_limit(text, text, double precision, text, timestamptz),
    calsync.queue_stats_by_company(timestamptz), calsync.rate_limit_stats(timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, bigint[], integer, timestamptz),
    calsync.take_rate_slots(text, text, integer, integer, interval, interval, timestamptz),
    calsync.pause_rate_limit(text, text, double precision, text, timestamptz),
    calsync.queue_stats_by_company(timestamptz), calsync.rate_limit_stats(timestamptz) FROM PUBLIC;

-- name: backfill_function
-- Revision 0023's backfill: the company of the events enqueued before it, a batch at a time (by seq).
CREATE FUNCTION calsync.backfill_outbox_company_0023(p_after bigint, p_batch integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_last bigint;
BEGIN
    WITH batch AS (
        SELECT o.seq FROM calsync.outbox o WHERE o.seq > p_after ORDER BY o.seq LIMIT p_batch
    ), done AS (
        UPDATE calsync.outbox o SET company_id = a.company_id
        FROM batch b, appointments a
        WHERE o.seq = b.seq AND o.company_id IS NULL AND o.aggregatetype = 'appointment'
          AND a.id = o.aggregateid::bigint
    )
    SELECT max(b.seq) INTO v_last FROM batch b;
    RETURN v_last;
END
$$;

-- name: drop_backfill_function
-- squawk-ignore ban-drop-function -- the revision's own backfill helper, used just before and by nothing else
DROP FUNCTION calsync.backfill_outbox_company_0023(bigint, integer);

-- name: index
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_company_id_seq_index ON calsync.outbox (company_id, seq);

-- name: drop_index
DROP INDEX CONCURRENTLY IF EXISTS calsync.outbox_company_id_seq_index;

-- name: previous_functions
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM calsync.authenticate_worker('calsync.claim_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.claim_sync_events', p_now,
                                          p_lease => coalesce(p_lease, interval '0'));
    RETURN QUERY
    WITH heads AS (
        SELECT o.id, o.aggregateid, o.type
        FROM calsync.outbox o
        LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
        WHERE o.aggregatetype = 'appointment'
          AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
          AND NOT EXISTS (
              SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
              WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
        ORDER BY o.seq
        LIMIT p_limit
        FOR UPDATE OF o SKIP LOCKED
    ), claimed AS (
        INSERT INTO calsync.outbox_delivery AS d
            (outbox_id, aggregateid, status, attempts, locked_by, locked_until, covers_seq, next_attempt_at)
        SELECT h.id, h.aggregateid, 'running', 1, p_worker, p_now + p_lease,
               (SELECT max(x.seq) FROM calsync.outbox x WHERE x.aggregateid = h.aggregateid), p_now
        FROM heads h
        ON CONFLICT ON CONSTRAINT outbox_delivery_pkey DO UPDATE
            SET status = 'running', attempts = d.attempts + 1, locked_by = excluded.locked_by,
                locked_until = excluded.locked_until, covers_seq = excluded.covers_seq
            WHERE d.status = 'retry'
        RETURNING d.outbox_id, d.aggregateid, d.attempts, d.covers_seq
    )
    SELECT c.outbox_id, c.aggregateid::bigint, h.type, c.attempts, c.covers_seq
    FROM claimed c JOIN heads h ON h.id = c.outbox_id;
END
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment (one statement, SKIP LOCKED).';

-- name: previous_view
DROP VIEW remediation.sync_health;
-- The dashboard, as one row. Thresholds are calsync.settings (health_*):
--   CRITICAL: failed syncs >= health_failed_critical (default 10), or the 24 h success rate is below
--             health_success_rate_critical (default 0.8) with at least 10 attempts;
--             or Cal.com refuses a key (calsync.key_problems: bad key, wrong base URL);
--   DEGRADED: any failed sync, dead event, failure older than 24 h, or pending sync older than 1 h;
--   HEALTHY:  none of these.
CREATE VIEW remediation.sync_health AS
WITH t AS (
    SELECT
        (SELECT value::int FROM calsync.settings WHERE key = 'health_failed_critical') AS failed_critical,
        (SELECT value::numeric FROM calsync.settings WHERE key = 'health_success_rate_critical') AS rate_critical
), n AS MATERIALIZED (  -- each count once (inlined, every use would count again)
    SELECT
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show'))::int AS pending,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed')::int AS failed,
        (SELECT count(*) FROM appointments WHERE requires_manual_review)::int AS manual_review,
        (SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'dead')::int AS dead_events,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed'
            AND coalesce(last_sync_attempt_at, manual_review_flagged_at, updated_at) < now() - interval '24 hours')::int
            AS ancient_failures,
        (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending'
            AND status NOT IN ('cancelled', 'no_show')
            AND coalesce(last_sync_attempt_at, created_at) < now() - interval '1 hour')::int AS stale_pending,
        h.attempted_24h,
        h.synced_24h,
        (SELECT count(*) FROM calsync.integrity_issues WHERE resolved_at IS NULL)::int AS integrity_issues
    FROM (  -- one index-only pass (remediation_appointments_last_sync_attempt_index includes the status)
        SELECT count(*)::int AS attempted_24h, count(*) FILTER (WHERE calcom_sync_status = 'synced')::int AS synced_24h
        FROM appointments WHERE last_sync_attempt_at > now() - interval '24 hours'
    ) AS h
), a AS (
    SELECT n.*, t.*,
           CASE WHEN n.attempted_24h > 0 THEN round(100.0 * n.synced_24h / n.attempted_24h, 2) END AS success_rate_24h,
           array_remove(ARRAY[
               CASE WHEN n.failed >= t.failed_critical
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs (threshold ' || t.failed_critical || ')') END,
               CASE WHEN n.attempted_24h >= 10 AND n.synced_24h < t.rate_critical * n.attempted_24h
                    THEN jsonb_build_object('severity', 'critical', 'alert', 'success_rate', 'count', n.attempted_24h - n.synced_24h,
                         'message', 'success rate ' || round(100.0 * n.synced_24h / n.attempted_24h, 2) || ' % over 24 h (threshold '
                                    || round(100 * t.rate_critical) || ' %)') END,
               CASE WHEN n.failed > 0 AND n.failed < t.failed_critical
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'failed_syncs', 'count', n.failed,
                         'message', n.failed || ' failed syncs') END,
               CASE WHEN n.dead_events > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'dead_events', 'count', n.dead_events,
                         'message', n.dead_events || ' outbox events given up on') END,
               CASE WHEN n.ancient_failures > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'ancient_failures', 'count', n.ancient_failures,
                         'message', n.ancient_failures || ' failures older than 24 h') END,
               CASE WHEN n.stale_pending > 0
                    THEN jsonb_build_object('severity', 'warning', 'alert', 'stale_pending', 'count', n.stale_pending,
                         'message', n.stale_pending || ' syncs pending for more than 1 h') END
           ], NULL) || ARRAY(  -- a refused key pauses every sync that uses it
               SELECT jsonb_build_object('severity', 'critical', 'alert', 'key_refused', 'count', 1,
                      'message', 'Cal.com refuses key ' || k.key_ref || ' (' || k.category || ') since '
                                 || to_char(k.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC: '
                                 || k.message || '; its syncs wait and resume by themselves once it works')
               FROM calsync.key_problems k WHERE k.resolved_at IS NULL ORDER BY k.key_ref) AS alerts
    FROM n, t
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical') THEN 'CRITICAL'
            WHEN cardinality(a.alerts) > 0 THEN 'DEGRADED' ELSE 'HEALTHY' END AS health,
       a.success_rate_24h, a.attempted_24h, a.pending, a.failed, a.manual_review, a.dead_events,
       a.ancient_failures, a.stale_pending, a.integrity_issues,
       (SELECT count(*) FROM unnest(a.alerts) x WHERE x->>'severity' = 'critical')::int AS critical_alerts,
       to_jsonb(a.alerts) AS alerts
FROM a;
COMMENT ON VIEW remediation.sync_health IS
    'The sync dashboard in one row. CRITICAL: failed >= health_failed_critical (10), 24 h success rate < health_success_rate_critical (80 %) or a key refused by Cal.com; DEGRADED: any failure, dead event, failure older than 24 h or pending older than 1 h; else HEALTHY.';
COMMENT ON COLUMN remediation.sync_health.health IS 'HEALTHY, DEGRADED or CRITICAL (thresholds in the view comment and calsync.settings)';
COMMENT ON COLUMN remediation.sync_health.success_rate_24h IS 'percent of appointments attempted in the last 24 h that are synced';
COMMENT ON COLUMN remediation.sync_health.attempted_24h IS 'appointments with a sync attempt in the last 24 h';
COMMENT ON COLUMN remediation.sync_health.pending IS 'live appointments waiting to sync';
COMMENT ON COLUMN remediation.sync_health.failed IS 'appointments whose sync failed';
COMMENT ON COLUMN remediation.sync_health.manual_review IS 'appointments flagged for a person';
COMMENT ON COLUMN remediation.sync_health.dead_events IS 'outbox events given up on';
COMMENT ON COLUMN remediation.sync_health.ancient_failures IS 'failed syncs whose last attempt is older than 24 h';
COMMENT ON COLUMN remediation.sync_health.stale_pending IS 'syncs pending for more than 1 h';
COMMENT ON COLUMN remediation.sync_health.integrity_issues IS 'open rows of calsync.integrity_issues';
COMMENT ON COLUMN remediation.sync_health.critical_alerts IS 'how many alerts are critical';
COMMENT ON COLUMN remediation.sync_health.alerts IS 'active alerts: [{severity, alert, count, message}]';
GRANT SELECT ON remediation.sync_health TO calsync_readonly;

-- name: drop
DROP FUNCTION calsync.claim_sync_events(text, integer, interval, bigint[], integer, timestamptz);
DROP TRIGGER outbox_record_company ON calsync.outbox;
DROP FUNCTION calsync.tg_outbox__record_company();
DROP FUNCTION calsync.take_rate_slots(text, text, integer, integer, interval, interval, timestamptz);
DROP FUNCTION calsync.pause_rate_limit(text, text, double precision, text, timestamptz);
DROP FUNCTION calsync.queue_stats_by_company(timestamptz);
DROP FUNCTION calsync.rate_limit_stats(timestamptz);
DROP TABLE calsync.rate_limits;
ALTER TABLE calsync.outbox DROP COLUMN company_id;
DELETE FROM remediation.categories WHERE category = 'KEY_MISSING';
