"""Sending webhooks: asynchronous, bounded, fire-and-forget, as Cal.com's sendPayload (no retry; the outcome is
logged), with seeded delivery faults.

- A booking change builds each subscriber's body at once (the booking as it is then) and puts it on that
  subscriber's bounded queue; the API answer never waits for it. A full queue loses the delivery (`overflow`).
- One sender task per subscriber sends its queue in order: `POST` with `Content-Type`, `X-Cal-Signature-256`,
  `X-Cal-Webhook-Version`, redirects not followed (`redirect: "manual"`), a total timeout per delivery, the answer
  read up to 64 KiB. A slow subscriber delays only its own deliveries.
- Faults, one seeded draw per delivery when a rate is set (the rates are consecutive slices of [0, 1)): `drop`
  (never sent), `duplicate` (sent twice, the same bytes and headers), `reorder` (held back and sent after the
  subscriber's next delivery, or after `webhook_reorder_hold_s` if none comes); plus `webhook_delay_ms` LOW:HIGH
  before each send.
- Every attempt is recorded (`deliveries()`, the last 1,000) and counted per subscriber (`stats()`). A reset
  forgets queued and held deliveries; one in flight across a reset is not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from worker.devtools.simulator.config import SimulatorConfig
from worker.devtools.simulator.model import Booking
from worker.devtools.simulator.webhooks import Subscription, booking_payload, js_iso, render_body, signature

log = logging.getLogger(__name__)
MAX_RECORDS = 1000
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(slots=True)
class Delivery:
    seq: int
    generation: int
    subscription: Subscription
    trigger: str
    booking_uid: str
    body: bytes
    headers: dict[str, str]
    fault: str | None = None


@dataclass(slots=True)
class _Lane:
    """One subscriber's queue, sender task and held-back (reordered) deliveries."""

    queue: asyncio.Queue[Delivery]
    task: asyncio.Task[None] | None = None
    held: list[Delivery] = field(default_factory=list)


class WebhookDispatcher:
    def __init__(self, config: SimulatorConfig, now_ms: Callable[[], int]) -> None:
        self.now_ms = now_ms
        self.rng = random.Random(config.seed)
        self.subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._lanes: dict[str, _Lane] = {}
        self._session: aiohttp.ClientSession | None = None
        self.generation = 0
        self.records: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self.counts: dict[str, Counter[str]] = {}
        self.faults: Counter[str] = Counter()
        self.configure(config)
        self.put(list(config.webhooks))

    def configure(self, config: SimulatorConfig, reseed: bool = False) -> None:
        if reseed:
            self.rng.seed(config.seed)
        self.timeout_s = config.webhook_timeout_s
        self.queue_size = config.webhook_queue_size
        self.delay_ms = config.webhook_delay_ms
        self.hold_s = config.webhook_reorder_hold_s
        self._slices = [
            ("drop", config.webhook_drop_rate),
            ("duplicate", config.webhook_duplicate_rate),
            ("reorder", config.webhook_reorder_rate),
        ]
        self.seed = config.seed

    # -- subscriptions --------------------------------------------------------------------------
    def put(self, subs: list[Subscription]) -> None:
        for sub in subs:
            self.subscriptions[sub.id] = sub

    def new_id(self) -> str:
        while (candidate := f"wh-{next(self._ids)}") in self.subscriptions:
            pass
        return candidate

    def remove(self, sub_id: str) -> bool:
        return self.subscriptions.pop(sub_id, None) is not None

    # -- events ---------------------------------------------------------------------------------
    def booking_changed(self, trigger: str, booking: Booking, previous: Booking | None = None) -> None:
        """Called synchronously by `Bookings` after a change: queue a delivery per interested subscriber."""
        subs = [s for s in self.subscriptions.values() if s.wants(trigger)]
        if not subs:
            return
        payload = booking_payload(trigger, booking, previous)
        created_at = js_iso(self.now_ms())
        for sub in subs:
            body, content_type = render_body(sub, trigger, created_at, payload)
            headers = {
                "Content-Type": content_type,
                "X-Cal-Signature-256": signature(sub.secret, body),
                "X-Cal-Webhook-Version": sub.version,
            }
            d = Delivery(next(self._seq), self.generation, sub, trigger, booking.uid, body, headers, self._decide())
            lane = self._lane(sub.id)
            try:
                lane.queue.put_nowait(d)
            except asyncio.QueueFull:
                self._count(sub.id, "overflow")
                self._record(d, None, "queue full: not sent", 0.0, "overflow")

    def _decide(self) -> str | None:
        if not any(rate > 0 for _, rate in self._slices):
            return None
        u, edge = self.rng.random(), 0.0
        for kind, rate in self._slices:
            edge += rate
            if u < edge:
                return kind
        return None

    def _lane(self, sub_id: str) -> _Lane:
        lane = self._lanes.get(sub_id)
        if lane is None:
            lane = self._lanes[sub_id] = _Lane(asyncio.Queue(self.queue_size))
        if lane.task is None or lane.task.done():
            lane.task = asyncio.get_running_loop().create_task(self._run(lane))
        return lane

    # -- sending --------------------------------------------------------------------------------
    async def _run(self, lane: _Lane) -> None:
        while True:
            try:
                timeout = self.hold_s if lane.held else None
                d = await asyncio.wait_for(lane.queue.get(), timeout)
            except TimeoutError:
                await self._release(lane)
                continue
            if d.generation != self.generation:
                continue
            if d.fault == "drop":
                self.faults["drop"] += 1
                self._count(d.subscription.id, "dropped")
                self._record(d, None, None, 0.0, "drop")
                continue
            if d.fault == "reorder":
                self.faults["reorder"] += 1
                lane.held.append(d)
                continue
            await self._send(d)
            if d.fault == "duplicate":
                self.faults["duplicate"] += 1
                await self._send(d, fault="duplicate")
            await self._release(lane)

    async def _release(self, lane: _Lane) -> None:
        held, lane.held = lane.held, []
        for d in held:
            if d.generation == self.generation:
                await self._send(d, fault="reorder")

    async def _send(self, d: Delivery, fault: str | None = None) -> None:
        low, high = self.delay_ms
        if high > 0:
            await asyncio.sleep((low if low == high else self.rng.uniform(low, high)) / 1000)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                trust_env=False, skip_auto_headers=("User-Agent",), headers={"User-Agent": "node"}
            )
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        answer = ""
        try:
            async with self._session.post(
                d.subscription.subscriber_url,
                data=d.body,
                headers=d.headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as resp:
                status = resp.status
                answer = (await resp.content.read(MAX_ANSWER_BYTES)).decode("utf-8", "replace")[:500]
        except TimeoutError:
            error = f"timeout after {self.timeout_s} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        elapsed = (time.monotonic() - started) * 1000
        if d.generation != self.generation:
            return
        ok = status is not None and 200 <= status < 300
        self._count(d.subscription.id, "sent" if ok else "failed", str(status) if status else "error")
        if not ok:  # Cal.com logs and moves on
            log.info("webhook %s to %s failed: %s", d.trigger, d.subscription.subscriber_url, error or status)
        self._record(d, status, error, elapsed, fault, answer)

    # -- bookkeeping ----------------------------------------------------------------------------
    def _count(self, sub_id: str, *keys: str) -> None:
        c = self.counts.setdefault(sub_id, Counter())
        for key in keys:
            c[key] += 1

    def _record(
        self, d: Delivery, status: int | None, error: str | None, ms: float, fault: str | None, answer: str = ""
    ) -> None:
        self.records.append(
            {
                "seq": d.seq,
                "subscriptionId": d.subscription.id,
                "subscriberUrl": d.subscription.subscriber_url,
                "triggerEvent": d.trigger,
                "bookingUid": d.booking_uid,
                "body": d.body.decode("utf-8"),
                "headers": dict(d.headers),
                "status": status,
                "ok": status is not None and 200 <= status < 300,
                "error": error,
                "answer": answer,
                "durationMs": round(ms, 1),
                "fault": fault,
                "sent": fault not in ("drop", "overflow"),
                "at": js_iso(self.now_ms()),
            }
        )

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        return [r for r in self.records if all(str(r.get(k)) == v for k, v in filters.items())]

    def stats(self) -> dict[str, Any]:
        return {
            "subscriptions": len(self.subscriptions),
            "queued": sum(lane.queue.qsize() + len(lane.held) for lane in self._lanes.values()),
            "faults": {k: self.faults[k] for k in ("drop", "duplicate", "reorder")},
            "bySubscription": {sid: dict(c) for sid, c in self.counts.items()},
        }

    def reset(self, accounts: bool) -> None:
        """Forget queued, held and recorded deliveries (and the subscriptions with `accounts`)."""
        self.generation += 1
        for lane in self._lanes.values():
            lane.held.clear()
            while not lane.queue.empty():
                lane.queue.get_nowait()
        self.records.clear()
        self.counts.clear()
        self.faults.clear()
        self.rng.seed(self.seed)
        if accounts:
            self.subscriptions.clear()

    async def close(self) -> None:
        for lane in self._lanes.values():
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await lane.task
        if self._session is not None:
            await self._session.close()
