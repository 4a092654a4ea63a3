"""The drain loop: claim outbox events, sync their appointments to Cal.com, record the outcomes.

- Wakes on NOTIFY calsync_outbox (a dedicated LISTEN connection); polling every poll_interval_s is the
  guarantee. While it has nothing to do it marks itself idle in calsync.outbox_listeners, which is the
  only time enqueueing sends a NOTIFY.
- Claims in one statement (calsync.claim_sync_events, FOR UPDATE SKIP LOCKED, a lease, at most one event
  per appointment), loads the claimed appointments' state in one query, and syncs up to ``concurrency``
  appointments at once through one rate limiter and one HTTP client.
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
from worker.sync.calcom import CalcomClient
from worker.sync.categories import Category, Verdict
from worker.sync.contract import SyncState, decode_state
from worker.sync.event_types import EventTypeCache
from worker.sync.keyhealth import KeyHealth, is_key_problem, probe, start_refusal
from worker.sync.ratelimit import RateLimiter
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
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_window_s)
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
        self.client: CalcomClient | None = None
        self.event_types: EventTypeCache | None = None
        self.key = KeyHealth()

    # -- database ---------------------------------------------------------------------------------
    async def _fetch(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        assert self.pool is not None
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query(name).encode(), params)
            return await cur.fetchall() if cur.description else []

    async def queue_stats(self) -> tuple[int, int, float]:
        (depth, dead, oldest), *_ = await self._fetch("queue_stats", {})
        return int(depth), int(dead), float(oldest)

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
            max_size=4,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            configure=functools.partial(_configure, token=self.token),
            open=False,
        )
        self.client = CalcomClient(
            self.s.base_url,
            self.s.api_key,
            self.limiter,
            timeout_s=self.s.request_timeout_s,
            max_response_bytes=self.s.max_response_bytes,
            max_connections=self.s.concurrency,
        )
        self.event_types = EventTypeCache(self.client, self.s.event_type_ttl_s)
        # one cheap authenticated call: a wrong base URL or a refused key stops here, not appointment by appointment
        checked = await probe(self.client)
        if (refusal := start_refusal(checked)) is not None and is_key_problem(checked.verdict):
            await self.client.aclose()
            raise CliError(f"refusing to start: {refusal}", Exit.USAGE)
        if refusal is not None:  # Cal.com is down or slow: start anyway, the syncs retry
            logs.log("calcom_unavailable_at_start", level="warning", error=refusal)
        await self.pool.open(wait=True)
        runner = None
        if self.s.metrics_port:
            runner = await metrics.serve(self.metrics, self.s.metrics_port, self.queue_stats)
        await self._fetch("listener_register", {"worker": self.s.worker_id})
        listener = asyncio.create_task(self._listen())
        housekeeping = asyncio.create_task(self._housekeeping())
        self.flusher = asyncio.create_task(self.recorder.run())
        logs.log(
            "worker_started",
            worker_id=self.s.worker_id,
            base_url=self.s.base_url,
            concurrency=self.s.concurrency,
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
        if self.key.problem is not None and not await self._key_works_again():
            if self.s.once:  # nothing will go through until the key or base URL is fixed
                await self.recorder.flush()
                return not self.inflight
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), max(0.05, self.key.paused_for()))
            return False
        if (paused := self.limiter.paused_for()) > 0 and not self.s.once:
            # Cal.com blocks us for a while (429) or the window is used up: claiming now would only bounce
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), min(paused, self.s.poll_interval_s * 4))
            return False
        self.wake.clear()  # a NOTIFY or a finished task from here on ends the wait below
        claimed = await self._claim(min(free, self.s.batch_size)) if free > 0 else 0
        if claimed:
            await self.set_idle(False)
            return False
        if self.s.once and not self.inflight:
            await self.recorder.flush()  # outcomes first: a recorded retry is what makes an event due again
            await self._fetch("reap", {"dead_after_s": max(30.0, 6 * self.s.poll_interval_s)})
            limit = min(self.s.concurrency, self.s.batch_size)
            nothing = self.limiter.paused_for() > 0 or not await self._claim(limit)
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

    async def _key_works_again(self) -> bool:
        """While the key is paused: when its probe is due, ask Cal.com again; True once it answers."""
        if self.key.paused_for() > 0 or self.inflight:
            return False
        assert self.client is not None and self.key.problem is not None
        ex = await probe(self.client)
        if ex.verdict.category != Category.OK:
            self.key.refuse(ex.verdict if is_key_problem(ex.verdict) else self.key.problem, self.s.key_probe_s)
            return False
        await self._fetch("key_problem_clear", {"worker": self.s.worker_id, "key_ref": self.key.key_ref})
        logs.log("key_recovered", key=self.key.key_ref, was=str(self.key.problem.category))
        self.key.problem = None
        self.metrics.key_paused = 0
        self.wake.set()
        return True

    async def _key_refused(self, verdict: Verdict) -> None:
        if not self.key.refuse(verdict, self.s.key_probe_s):
            return
        self.metrics.key_paused = 1
        self.metrics.key_problems += 1
        logs.log(
            "key_refused",
            level="error",
            key=self.key.key_ref,
            category=str(verdict.category),
            error=verdict.message[:500],
        )
        params = {
            "worker": self.s.worker_id,
            "key_ref": self.key.key_ref,
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
            rows = await self._fetch("claim", {"worker": self.s.worker_id, "limit": limit, "lease_s": self.s.lease_s})
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
        for event_id, appointment_id, event_type, attempts, _covers in rows:
            state = states[int(appointment_id)]
            task = asyncio.create_task(self._sync(str(event_id), state, int(attempts), str(event_type)))
            self.inflight[str(event_id)] = task
            task.add_done_callback(functools.partial(self._done, str(event_id)))
        return len(rows)

    def _done(self, key: str, _task: asyncio.Task[None]) -> None:
        self.inflight.pop(key, None)
        self.wake.set()

    async def _sync(self, event_id: str, state: SyncState, attempt: int, event_type: str) -> None:
        assert self.client is not None
        started = time.perf_counter()
        try:
            sync = AppointmentSync(self.client, state, event_id, attempt, self.event_types, self.s.phone_region)
            outcome = await sync.run(dt.datetime.now(dt.UTC))
        except Exception as e:  # a bug must not lose the event: it is retried and the error recorded
            logs.log("sync_crashed", level="error", event_id=event_id, appointment_id=state.id, error=repr(e))
            outcome = Outcome(state.id, event_id)
            outcome.failure = Verdict(Category.NETWORK, f"worker error: {type(e).__name__}")
        for ex in outcome.exchanges:
            self.metrics.observe_request(str(ex.verdict.category), ex.duration_ms / 1000)
        if outcome.failure is not None and is_key_problem(outcome.failure):
            await self._key_refused(outcome.failure)
        self.metrics.rate_limit_waits = self.limiter.waits
        self.metrics.rate_limit_wait_s = self.limiter.waited_s
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
        if self.client:
            await self.client.aclose()
        if self.pool:
            await self.pool.close()
        logs.log("worker_stopped", worker_id=self.s.worker_id, events=dict(self.metrics.events))


def run(settings: WorkerSettings) -> int:
    return asyncio.run(Worker(settings).run())
