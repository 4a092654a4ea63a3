"""The drain loop: claim outbox events, sync their appointments to Cal.com, record the outcomes.

- Wakes on NOTIFY calsync_outbox (a dedicated LISTEN connection); polling every poll_interval_s is the
  guarantee. While it has nothing to do it marks itself idle in calsync.outbox_listeners, which is the
  only time enqueueing sends a NOTIFY.
- Claims in one statement (calsync.claim_sync_events, FOR UPDATE SKIP LOCKED, a lease, at most one event
  per appointment, companies interleaved), loads the claimed appointments' state in one query, and syncs up to
  ``concurrency`` appointments at once, each with its company's key (``worker.sync.keyring``) through that key's
  lane (``worker.sync.lanes``: client, rate limit shared with every worker, health). The claim leaves alone the
  companies whose key is refused, paused, out of slots or busy here (``key_concurrency``), and the companies
  without a key (held and reported until their key file is there).
- Outcomes are recorded in batches (calsync.finish_sync_events), which checks the lease is still ours.
  A reaper returns expired leases and those of workers that stopped heart-beating.
- SIGTERM/SIGINT: stop claiming, finish in-flight work up to shutdown_deadline_s, release the rest.
- ``once``: drain what is due, then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import secrets
import signal
import time
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from worker import logs
from worker.db import libpq_url, query
from worker.errors import CliError, Exit
from worker.ops import head
from worker.sync import metrics
from worker.sync.appointment import AppointmentSync, Outcome
from worker.sync.categories import Category, Verdict
from worker.sync.contract import SyncState, decode_state
from worker.sync.keyhealth import is_key_problem, probe, start_refusal
from worker.sync.keyring import DEFAULT, Credential, Keyring, NoKey
from worker.sync.lanes import Lane, Lanes
from worker.sync.recording import Pending, Recorder
from worker.sync.sdnotify import Notifier
from worker.sync.settings import WorkerSettings

CHANNEL = "calsync_outbox"


async def _configure(conn: psycopg.AsyncConnection[Any], token: str) -> None:
    # the worker's own writes never enqueue (no loops); see calsync.is_sync_loop
    await conn.execute("SET calsync.writer = 'worker'")
    # who this worker is (calsync.authenticate_worker): a secret of its own on each of its connections, sent as a
    # bound parameter so that no other session sees it (pg_stat_activity shows $1); the database keeps its hash
    await conn.execute("SELECT set_config('calsync.worker_token', %s, false)", [token])


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.s = settings
        self.token = secrets.token_urlsafe(32)  # this process's identity in the database; never logged
        self.metrics = metrics.Metrics()
        self.keyring = Keyring(settings.credentials_dir, settings.api_key or None, settings.credentials_ttl_s)
        self.lanes = Lanes(settings, self._fetch)
        self.last_held_check = 0.0
        self.notifier = Notifier()
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.inflight: dict[str, asyncio.Task[None]] = {}
        # leases this worker took and has not yet recorded an outcome for; when a claim's reply may have been
        # lost, every other lease it holds is given back (release_unknown_leases) before it claims again
        self.held: set[str] = set()
        self.claim_uncertain = False
        self.recorder = Recorder(settings, self._fetch, self.metrics, self.held)
        self.last_ping = 0.0
        self.idle = False
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self.statements = 0  # every statement this worker ran (statements per request, in the metrics)

    # -- database ---------------------------------------------------------------------------------
    async def _fetch(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        assert self.pool is not None
        self.statements += 1
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query(name).encode(), params)
            return await cur.fetchall() if cur.description else []

    async def queue_stats(self) -> metrics.QueueStats:
        (depth, dead, oldest), *_ = await self._fetch("queue_stats", {})
        companies = await self._fetch("queue_stats_by_company", {})
        return metrics.QueueStats(int(depth), int(dead), float(oldest), companies, self._key_figures())

    def _key_figures(self) -> list[metrics.KeyFigures]:
        return [
            metrics.KeyFigures(
                lane.key_ref,
                int(lane.health.problem is not None),
                lane.limiter.waits,
                lane.limiter.waited_s,
                lane.limiter.pauses,
                lane.inflight,
                len(lane.companies),
            )
            for lane in self.lanes.lanes.values()
        ]

    async def set_idle(self, idle: bool) -> None:
        if idle != self.idle:
            self.idle = idle
            await self._fetch("listener_idle", {"worker": self.s.worker_id, "idle": idle})

    # -- main -------------------------------------------------------------------------------------
    async def run(self) -> int:
        head.require_head(self.s.database_url)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        self.pool = AsyncConnectionPool(
            libpq_url(self.s.database_url),
            min_size=2,
            max_size=max(4, min(16, self.s.concurrency // 4)),  # slots, claims and records of many lanes
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            configure=functools.partial(_configure, token=self.token),
            open=False,
        )
        await self.pool.open(wait=True)
        await self._fetch("listener_register", {"worker": self.s.worker_id})  # before any shared rate limit
        if self.s.api_key:
            # one cheap authenticated call with the fallback key: a wrong base URL or a refused key stops here,
            # not appointment by appointment (companies' own keys are checked as they are used)
            checked = await probe(self.lanes.lane(Credential(DEFAULT, self.s.api_key), None).client)
            if (refusal := start_refusal(checked)) is not None and is_key_problem(checked.verdict):
                with contextlib.suppress(psycopg.Error):
                    await self._fetch("listener_remove", {"worker": self.s.worker_id})
                await self.lanes.aclose()
                await self.pool.close()
                raise CliError(f"refusing to start: {refusal}", Exit.USAGE)
            if refusal is not None:  # Cal.com is down or slow: start anyway, the syncs retry
                logs.log("calcom_unavailable_at_start", level="warning", error=refusal)
        runner = None
        if self.s.metrics_port:
            runner = await metrics.serve(self.metrics, self.s.metrics_port, self.queue_stats)
        listener = asyncio.create_task(self._listen())
        housekeeping = asyncio.create_task(self._housekeeping())
        self.flusher = asyncio.create_task(self.recorder.run())
        logs.log(
            "worker_started",
            worker_id=self.s.worker_id,
            base_url=self.s.base_url,
            concurrency=self.s.concurrency,
            key_concurrency=self.s.key_concurrency,
            credentials_dir=str(self.s.credentials_dir) if self.s.credentials_dir else None,
            fallback_key=bool(self.s.api_key),
            rate_limit=self.s.rate_limit,
            once=self.s.once,
        )
        self.notifier.ready()
        try:
            await self._drain()
        finally:
            await self._shutdown(listener, housekeeping)
            if runner:
                await runner.cleanup()
        return 0

    def stop(self) -> None:
        if not self.stopping.is_set():
            logs.log("worker_stopping", worker_id=self.s.worker_id, inflight=len(self.inflight))
            self.notifier.stopping()
            self.stopping.set()
            self.wake.set()

    async def _drain(self) -> None:
        while not self.stopping.is_set():
            try:
                if await self._drain_step():
                    break
            except psycopg.OperationalError as e:  # the database went away: keep going, it comes back
                logs.log("database_unavailable", level="warning", error=str(e).strip())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), 1.0)

    async def _drain_step(self) -> bool:
        """One round of the loop; True when a --once run is done."""
        interval = self.notifier.watchdog_interval_s
        if interval and time.monotonic() - self.last_ping > interval:
            self.notifier.watchdog()
            self.last_ping = time.monotonic()
        free = self.s.concurrency - len(self.inflight)
        await self._probe_refused_keys()
        await self._release_held()
        self.wake.clear()  # a NOTIFY or a finished task from here on ends the wait below
        claimed = await self._claim(min(free, self.s.batch_size)) if free > 0 else 0
        if claimed:
            await self.set_idle(False)
            return False
        if self.s.once and not self.inflight:
            await self.recorder.flush()  # outcomes first: a recorded retry is what makes an event due again
            await self._fetch("reap", {"dead_after_s": max(30.0, 6 * self.s.poll_interval_s)})
            limit = min(self.s.concurrency, self.s.batch_size)
            nothing = not await self._claim(limit)
            return nothing and not self.inflight
        if not self.inflight and not self.idle:
            await self.set_idle(True)
            # a booking that committed while this worker was turning idle saw it busy and did not NOTIFY: look
            # again now that the flag is set (later bookings notify), instead of leaving it to the poll
            if free > 0 and await self._claim(min(free, self.s.batch_size)):
                await self.set_idle(False)
                return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), self.s.poll_interval_s)
        return False

    async def _probe_refused_keys(self) -> None:
        """Each refused key whose probe is due (and that has nothing in flight): ask Cal.com again."""
        for lane in list(self.lanes.lanes.values()):
            if lane.health.problem is None or lane.health.paused_for() > 0 or lane.inflight:
                continue
            ex = await probe(lane.client)
            if ex.verdict.category != Category.OK:
                verdict = ex.verdict if is_key_problem(ex.verdict) else lane.health.problem
                lane.health.refuse(verdict, self.s.key_probe_s)
                continue
            await self._fetch("key_problem_clear", {"worker": self.s.worker_id, "key_ref": lane.key_ref})
            logs.log("key_recovered", key=lane.key_ref, was=str(lane.health.problem.category))
            lane.health.problem = None
            self.wake.set()

    async def _release_held(self) -> None:
        """Companies held for want of a key: once their key file is there, they are claimed again."""
        if not self.lanes.held or time.monotonic() - self.last_held_check < self.s.credentials_ttl_s:
            return
        self.last_held_check = time.monotonic()
        for company_id in list(self.lanes.held):
            if isinstance(self.keyring.for_company(company_id), Credential):
                del self.lanes.held[company_id]
                await self._fetch("key_problem_clear", {"worker": self.s.worker_id, "key_ref": f"company:{company_id}"})
                logs.log("company_key_found", company_id=company_id)
                self.wake.set()

    async def _hold(self, company_id: int | None, missing: NoKey) -> None:
        if company_id is None or company_id in self.lanes.held:
            return
        self.lanes.held[company_id] = missing
        self.last_held_check = time.monotonic()
        logs.log("company_key_missing", level="error", company_id=company_id, error=missing.message)
        params = {
            "worker": self.s.worker_id,
            "key_ref": missing.key_ref,
            "category": str(Category.KEY_MISSING),
            "message": missing.message,
        }
        try:
            await self._fetch("key_problem_report", params)
        except psycopg.Error as e:  # the hold stands anyway
            logs.log("key_problem_unrecorded", level="warning", error=str(e).strip()[:300])

    async def _key_refused(self, lane: Lane, verdict: Verdict) -> None:
        if not lane.health.refuse(verdict, self.s.key_probe_s):
            return
        self.metrics.key_problems += 1
        logs.log(
            "key_refused",
            level="error",
            key=lane.key_ref,
            category=str(verdict.category),
            error=verdict.message[:500],
        )
        params = {
            "worker": self.s.worker_id,
            "key_ref": lane.key_ref,
            "category": str(verdict.category),
            "message": verdict.message,
        }
        try:
            await self._fetch("key_problem_report", params)
        except psycopg.Error as e:  # the pause holds anyway; the alert comes with the next refusal
            logs.log("key_problem_unrecorded", level="warning", error=str(e).strip()[:300])

    async def _claim(self, limit: int) -> int:
        if self.claim_uncertain:
            held = {"worker": self.s.worker_id, "held": list(self.held)}
            (released,), *_ = await self._fetch("release_unknown", held)
            self.claim_uncertain = False
            if released:
                logs.log("leases_recovered", level="warning", count=released, worker_id=self.s.worker_id)
        try:
            params = {
                "worker": self.s.worker_id,
                "limit": limit,
                "lease_s": self.s.lease_s,
                "skip": self.lanes.skipped(),
                "per_company": self.s.key_concurrency,
            }
            rows = await self._fetch("claim", params)
            if not rows:
                return 0
            states = {
                s.id: s
                for s in map(
                    decode_state, (r[0] for r in await self._fetch("sync_state", {"ids": [r[1] for r in rows]}))
                )
            }
        except BaseException:
            self.claim_uncertain = True  # the claim may have committed without us learning what it took
            raise
        self.held.update(str(r[0]) for r in rows)
        for event_id, appointment_id, event_type, attempts, _covers, company_id in rows:
            state = states[int(appointment_id)]
            # the key now, so that the next claim already counts this one against its lane
            cred = self.keyring.for_company(company_id)
            lane = self.lanes.lane(cred, company_id) if isinstance(cred, Credential) else cred
            if isinstance(lane, Lane):
                lane.inflight += 1
            task = asyncio.create_task(
                self._sync(str(event_id), state, int(attempts), str(event_type), company_id, lane)
            )
            self.inflight[str(event_id)] = task
            task.add_done_callback(functools.partial(self._done, str(event_id)))
        return len(rows)

    def _done(self, key: str, _task: asyncio.Task[None]) -> None:
        self.inflight.pop(key, None)
        self.wake.set()

    async def _sync(
        self, event_id: str, state: SyncState, attempt: int, event_type: str, company_id: int | None, lane: Lane | NoKey
    ) -> None:
        started = time.perf_counter()
        if isinstance(lane, NoKey):  # held, not attempted: recorded as paused (no attempt counted)
            await self._hold(company_id, lane)
            outcome = Outcome(state.id, event_id)
            outcome.failure = Verdict(Category.KEY_MISSING, lane.message)
        else:
            try:
                sync = AppointmentSync(lane.client, state, event_id, attempt, lane.event_types, self.s.phone_region)
                outcome = await sync.run(dt.datetime.now(dt.UTC))
            except Exception as e:  # a bug must not lose the event: it is retried and the error recorded
                logs.log("sync_crashed", level="error", event_id=event_id, appointment_id=state.id, error=repr(e))
                outcome = Outcome(state.id, event_id)
                outcome.failure = Verdict(Category.NETWORK, f"worker error: {type(e).__name__}")
            finally:
                lane.inflight -= 1
            if outcome.failure is not None and is_key_problem(outcome.failure):
                await self._key_refused(lane, outcome.failure)
        for ex in outcome.exchanges:
            self.metrics.observe_request(str(ex.verdict.category), ex.duration_ms / 1000)
        self.metrics.requests += sum(1 for ex in outcome.exchanges if ex.sent)
        self.metrics.statements = self.statements
        self.metrics.rate_limit_waits = sum(lane.limiter.waits for lane in self.lanes.lanes.values())
        self.metrics.rate_limit_wait_s = sum(lane.limiter.waited_s for lane in self.lanes.lanes.values())
        took_ms = round((time.perf_counter() - started) * 1000, 1)
        self.recorder.add(Pending(outcome.result(), event_type, attempt, len(outcome.exchanges), took_ms))

    async def _listen(self) -> None:
        while not self.stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    libpq_url(self.s.database_url), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}".encode())
                    async for _ in conn.notifies():
                        self.wake.set()
            except psycopg.Error as e:
                logs.log("listen_lost", level="warning", error=str(e))
                self.wake.set()  # poll meanwhile
                await asyncio.sleep(1)

    async def _housekeeping(self) -> None:
        """Heartbeat, reap expired and orphaned leases, and prune old history (hourly)."""
        last_prune = 0.0
        while True:
            try:
                await self._fetch("listener_idle", {"worker": self.s.worker_id, "idle": self.idle})
                if self.inflight:
                    await self._fetch(
                        "renew", {"worker": self.s.worker_id, "ids": list(self.inflight), "lease_s": self.s.lease_s}
                    )
                (reaped,), *_ = await self._fetch("reap", {"dead_after_s": max(30.0, 6 * self.s.poll_interval_s)})
                if reaped:
                    logs.log("leases_reaped", count=reaped)
                    self.wake.set()
                if time.monotonic() - last_prune > 3600:
                    await self._fetch("prune", {})
                    last_prune = time.monotonic()
            except psycopg.Error as e:
                logs.log("housekeeping_failed", level="warning", error=str(e))
            await asyncio.sleep(min(10.0, self.s.poll_interval_s, self.s.lease_s / 3))

    async def _shutdown(self, *tasks: asyncio.Task[None]) -> None:
        if self.inflight:
            _, pending = await asyncio.wait(list(self.inflight.values()), timeout=self.s.shutdown_deadline_s)
            for t in pending:
                t.cancel()
            leftover = list(self.inflight)
            if leftover:
                with contextlib.suppress(psycopg.Error):
                    await self._fetch("release", {"worker": self.s.worker_id, "ids": leftover})
                logs.log("events_released", count=len(leftover))
        self.recorder.close()
        await self.flusher  # records everything still pending; never cancelled mid-statement
        for t in tasks:
            t.cancel()
        with contextlib.suppress(psycopg.Error):
            await self._fetch("listener_remove", {"worker": self.s.worker_id})
        await self.lanes.aclose()
        if self.pool:
            await self.pool.close()
        requests = sum(lane.limiter.granted - lane.limiter.dropped for lane in self.lanes.lanes.values())
        logs.log(
            "worker_stopped",
            worker_id=self.s.worker_id,
            events=dict(self.metrics.events),
            requests=self.metrics.requests,
            statements=self.statements,
            rate_statements=self.lanes.statements(),
            rate_slots_used=requests,
        )


def run(settings: WorkerSettings) -> int:
    return asyncio.run(Worker(settings).run())
