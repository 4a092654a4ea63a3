"""One commit for the deliveries that arrive together. Each delivery waits on a future; ``lanes`` tasks (one
database connection each) take whatever is queued (up to ``max_batch``) and store and apply it in one call,
``calsync.receive_webhooks``. At low load a batch is one delivery, so nothing waits for company; under load the
batches grow and one WAL flush serves many deliveries. A delivery is answered only after its batch committed.
A batch the database refuses (a deadlock between two batches, an unexpected error) is sent again one delivery at
a time (``calsync.receive_webhook``), so one bad delivery never fails another."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from worker import logs
from worker.db import query

Row = tuple[int, str, str | None, int | None]  # delivery_id, outcome, detail, appointment_id
_json = msgspec.json.Encoder()


@dataclass
class _Item:
    params: dict[str, str]
    done: asyncio.Future[Row] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def unavailable(e: BaseException) -> bool:
    """A lost or refused connection (class 08, 57P, or no SQLSTATE): nothing was stored."""
    state = getattr(e, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))


def _settle(item: _Item, outcome: Row | BaseException) -> None:
    if item.done.done():  # already settled (or its waiter went away)
        return
    if isinstance(outcome, BaseException):
        item.done.set_exception(outcome)
    else:
        item.done.set_result(outcome)


def _element(params: dict[str, str]) -> dict[str, Any]:
    """One element of receive_webhooks' array: the event and headers are JSON already."""
    raw = {"event": msgspec.Raw(params["event"].encode()), "headers": msgspec.Raw(params["headers"].encode())}
    return {**params, **raw}


class Batcher:
    def __init__(self, pool: AsyncConnectionPool[Any], lanes: int, max_batch: int = 64) -> None:
        self.pool, self.max_batch = pool, max_batch
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.tasks = [asyncio.create_task(self._lane()) for _ in range(lanes)]

    async def submit(self, params: dict[str, str]) -> Row:
        item = _Item(params)
        await self.queue.put(item)
        # shielded: a client that hangs up does not cancel the future a batch will settle (it is stored anyway)
        return await asyncio.shield(item.done)

    async def _lane(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self._store(batch)
            except Exception as e:  # the lane lives on; each delivery still waiting gets the error
                for item in batch:
                    _settle(item, e)

    async def _store(self, batch: list[_Item]) -> None:
        async with self.pool.connection() as conn:
            if len(batch) > 1:
                try:
                    doc = _json.encode([_element(i.params) for i in batch])
                    cur = await conn.execute(query("webhook_receive_batch"), {"deliveries": doc.decode()})
                    rows = await cur.fetchall()
                    for (_, *row), item in zip(rows, batch, strict=True):
                        _settle(item, (row[0], row[1], row[2], row[3]))
                    return
                except psycopg.Error as e:
                    if unavailable(e):
                        raise
                    logs.log("webhook_batch_refused", level="warning", size=len(batch), sqlstate=e.sqlstate)
            for item in batch:
                try:
                    cur = await conn.execute(query("webhook_receive"), item.params)
                    row = await cur.fetchone()
                    assert row is not None
                    _settle(item, (row[0], row[1], row[2], row[3]))
                except psycopg.Error as e:
                    if unavailable(e):
                        raise
                    _settle(item, e)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
