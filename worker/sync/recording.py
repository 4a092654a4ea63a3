"""Recording outcomes: the drain loop's results go to calsync.finish_sync_events in batches, and what the
database recorded (not what the worker hoped) is logged and counted.

A batch the connection could not take is put back and retried; a batch the database refused is recorded one
result at a time, reduced where a result on its own is refused, so one bad result never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg

from worker import logs
from worker.sync import metrics
from worker.sync.categories import Category
from worker.sync.contract import SyncResult, encode_results
from worker.sync.settings import WorkerSettings

Fetch = Callable[[str, dict[str, Any]], Awaitable[list[tuple[Any, ...]]]]


class Recorder:
    """Pending results and the task that records them (every 20 ms, or at once when a batch is full)."""

    def __init__(self, settings: WorkerSettings, fetch: Fetch, counters: metrics.Metrics, held: set[str]) -> None:
        self.s = settings
        self.worker_id = settings.worker_id
        self._fetch = fetch
        self.metrics = counters
        self.held = held  # the drain loop's leases without a recorded outcome; recording one discards it
        self.pending_results: list[Pending] = []
        self.flushed = asyncio.Event()
        self.flush_lock = asyncio.Lock()
        self.closing = False
        self.finish_failures = 0

    def add(self, pending: Pending) -> None:
        self.pending_results.append(pending)
        if len(self.pending_results) >= self.s.batch_size:
            self.flushed.set()

    def close(self) -> None:
        """Tell the recording task to flush what is left and return."""
        self.closing = True
        self.flushed.set()

    async def flush(self) -> None:
        """Record the pending results. A batch that could not be recorded is put back, never dropped."""
        async with self.flush_lock:
            while self.pending_results:
                batch, self.pending_results = self.pending_results, []
                try:
                    recorded = await self._record([p.result for p in batch])
                except psycopg.Error as e:
                    if is_connection_error(e):  # the connection or the server: the batch waits
                        self.pending_results[:0] = batch
                        raise
                    recorded = await self._record_each(batch, e)
                except BaseException:
                    self.pending_results[:0] = batch
                    raise
                self._recorded(batch, recorded)

    async def _record(self, results: list[SyncResult]) -> dict[str, str]:
        rows = await self._fetch(
            "finish",
            {
                "worker": self.worker_id,
                "results": encode_results(results),
                "max_attempts": self.s.max_attempts,
                "retry_base_s": self.s.retry_base_s,
                "retry_cap_s": self.s.retry_cap_s,
            },
        )
        return {str(event_id): str(outcome) for event_id, outcome in rows}

    async def _record_each(self, batch: list[Pending], error: psycopg.Error) -> dict[str, str]:
        """The database refused a batch (a bug, or a result it can't take): record the results one at a time, so
        one bad result can't hold up the others (put back for ever, it once wedged a worker). A result refused on
        its own is recorded in reduced form, still an attempt: without what it found at Cal.com (the next attempt
        looks that up again), with the refusal as its error; one refused even so is logged (ids only) and left to
        its lease."""
        logs.log("finish_refused", level="error", error=str(error).strip()[:500], results=len(batch))
        recorded: dict[str, str] = {}
        for i, pending in enumerate(batch):
            try:
                # as it is; then reduced with its archived exchanges; then reduced without them
                for fallback in range(3):
                    result = pending.result
                    if fallback:
                        result = unrecordable(result, error, keep_exchanges=fallback == 1)
                    try:
                        recorded |= await self._record([result])
                        break
                    except psycopg.Error as e:
                        if is_connection_error(e):
                            raise
                        error = e  # the refusal of this result on its own is the one to report
                else:
                    logs.log(
                        "result_unrecordable",
                        level="error",
                        error=str(error).strip()[:500],
                        event_id=str(pending.result.event_id),
                        appointment_id=pending.result.appointment_id,
                        category=pending.result.category,
                    )
            except BaseException:
                self._recorded(batch[:i], recorded)
                self.pending_results[:0] = batch[i:]
                raise
        return recorded

    def _recorded(self, batch: list[Pending], recorded: dict[str, str]) -> None:
        """Log what the database recorded for each result (not what the worker hoped)."""
        for p in batch:
            event_id = str(p.result.event_id)
            self.held.discard(event_id)
            outcome = recorded.get(event_id)
            if outcome is None:
                continue  # unrecordable: logged as such, left to its lease
            if outcome == "lease_lost":
                self.metrics.lost_leases += 1
                logs.log("lease_lost", level="warning", event_id=event_id, worker_id=self.worker_id)
                continue
            self.metrics.events[outcome] += 1
            logs.log(
                "event_" + outcome,
                event_id=event_id,
                appointment_id=p.result.appointment_id,
                event_type=p.event_type,
                attempt=p.attempt,
                category=p.result.category,
                requests=p.requests,
                took_ms=p.took_ms,
                error=p.result.error[:500] if p.result.error else None,
            )

    async def run(self) -> None:
        """Record outcomes every 20 ms (or at once when a batch is full). It is never cancelled mid-statement:
        on the way out it is told to finish, flushes what is left, and returns."""
        while not (self.closing and not self.pending_results):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flushed.wait(), 0.02)
            self.flushed.clear()
            try:
                await self.flush()
            except psycopg.Error as e:
                logs.log("finish_failed", level="error", error=str(e), pending=len(self.pending_results))
                if self.closing and self.finish_failures > 5:
                    logs.log("results_unrecorded", level="error", count=len(self.pending_results))
                    return
                self.finish_failures += 1
                await asyncio.sleep(1)


@dataclass(frozen=True)
class Pending:
    """A result waiting to be recorded, with what its log line needs."""

    result: SyncResult
    event_type: str
    attempt: int
    requests: int
    took_ms: float


def is_connection_error(e: psycopg.Error) -> bool:
    """The connection or the server is gone (retry the same statement later), as opposed to the database
    refusing this statement (a value it can't take: the result must be recorded differently)."""
    return e.sqlstate is None or e.sqlstate.startswith(("08", "57P"))


def unrecordable(result: SyncResult, error: psycopg.Error, *, keep_exchanges: bool) -> SyncResult:
    """What is left of a result the database refused: the attempt with the refusal as its error, and no facts. A
    success that could not be recorded is retried as NETWORK (the next attempt looks up what it did)."""
    return msgspec.structs.replace(
        result,
        category=result.category if result.category != str(Category.OK) else str(Category.NETWORK),
        skipped=False,
        error=f"the worker could not record this attempt ({str(error).strip()[:300]}); the next attempt looks up "
        f"at Cal.com what it did. Its category was {result.category}",
        detail=None,
        bookings=[],
        superseded=[],
        exchanges=result.exchanges if keep_exchanges else [],
    )
