"""Rate limits per API key that follow Cal.com's rate-limit headers: ``RateLimiter`` paces one process alone,
``SharedRateLimiter`` shares one key's limit with every worker through PostgreSQL.

Cal.com counts requests per key in fixed windows (120 per 60 s by default) and, once over, refuses every
request of that key for a block period (60 s) with 429 and no Retry-After. So the bucket is smooth (one
token of burst) and paced slightly under the limit, and it reads the ``X-RateLimit-*-Default`` headers:
when the window is nearly used up it waits for the window's reset, and after a 429 it waits out the block.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from worker import logs


class Limiter(Protocol):
    """What the HTTP client needs of a rate limit: a slot before each request, and each answer's headers."""

    async def acquire(self, max_wait_s: float = ...) -> float | None: ...

    def observe(self, status: int | None, headers: Mapping[str, str]) -> None: ...


class RateLimiter:
    def __init__(
        self,
        limit: int = 120,
        window_s: float = 60.0,
        *,
        headroom: float = 0.99,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.headroom = headroom
        self._clock = clock
        self._next = 0.0  # earliest time the next request may start
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time spent waiting, for the metrics
        self.waits = 0

    @property
    def interval(self) -> float:
        return self.window_s / (self.limit * self.headroom)

    def pause(self, seconds: float) -> None:
        """No request starts for ``seconds`` (a 429 block, or an exhausted window)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        """Seconds until requests may start again after a 429 block or an exhausted window (0 if none)."""
        return max(0.0, self._paused_until - self._clock())

    async def acquire(self, max_wait_s: float = float("inf")) -> float | None:
        """Wait for a slot and take it. If the slot is further away than ``max_wait_s``, take nothing and
        return how long the wait would be (a caller holding a lease gives the work back instead)."""
        async with self._lock:
            now = self._clock()
            start = max(now, self._next, self._paused_until)
            if start - now > max_wait_s:
                return start - now
            self._next = start + self.interval
        if (wait := start - now) > 0:
            self.waits += 1
            self.waited_s += wait
            await asyncio.sleep(wait)
        return None

    def observe(self, status: int | None, headers: Mapping[str, str]) -> None:
        """Adjust to a response: the server's limit, an almost used-up window, a 429 block."""
        limit = _header_int(headers, "x-ratelimit-limit-default")
        remaining = _header_int(headers, "x-ratelimit-remaining-default")
        reset = _header_float(headers, "x-ratelimit-reset-default")
        if limit and limit != self.limit:
            self.limit = limit
        if status == 429:
            self.pause(reset if reset is not None else self.window_s)
        elif remaining is not None and remaining <= 1 and reset is not None:
            self.pause(reset)


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = _header_float(headers, name)
    return int(value) if value is not None else None


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


# Cal.com's 120 per 60 s is paced at this share, so that a window of Cal.com's (which starts at any request) never
# sees more than its limit, whatever the other workers' timing: 117 requests per 60 s for 120.
PACE = 0.975
LATE_S = 0.5  # a slot not used within this long after its time is dropped (using it late could bunch requests)
MAX_BATCH = 8  # slots asked for at once

Fetch = Callable[[str, dict[str, Any]], Awaitable[list[tuple[Any, ...]]]]


class SharedRateLimiter:
    """The rate limit of one key, shared with every other worker through PostgreSQL (``calsync.take_rate_slots``).

    Requests wait for slots of the key's one schedule: a worker asks for as many slots as it has requests
    waiting (one statement per batch, at most ``MAX_BATCH``; asking for more would hold slots that the lane's
    in-flight cap keeps anyone from using),
    gets consecutive ones after every slot other workers hold, and each request starts at its slot; a slot not
    used within ``LATE_S`` of its time is dropped. A 429 (or a used-up window) pauses the key for every
    worker (``calsync.pause_rate_limit``); the others learn of it with their next batch. Same interface as
    ``RateLimiter``: ``acquire(max_wait_s)``, ``observe(status, headers)``, ``paused_for()``.
    """

    def __init__(
        self,
        fetch: Fetch,
        worker_id: str,
        key_ref: str,
        limit: int = 120,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.worker_id = worker_id
        self.key_ref = key_ref
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._slots: deque[float] = deque()
        self._paused_until = 0.0
        self._waiting = 0
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.waits = 0
        self.waited_s = 0.0
        self.statements = 0  # calls of take_rate_slots / pause_rate_limit (the database's cost, per request)
        self.granted = 0
        self.dropped = 0  # slots that went unused
        self.pauses = 0

    @property
    def paced_limit(self) -> int:
        return max(1, math.floor(self.limit * PACE))

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    def backlog_s(self) -> float:
        """How far ahead this worker's own slots reach (0 when it holds none)."""
        return max(0.0, self._slots[-1] - self._clock()) if self._slots else 0.0

    async def acquire(self, max_wait_s: float = float("inf")) -> float | None:
        self._waiting += 1
        try:
            async with self._lock:
                now = self._clock()
                while self._slots and self._slots[0] < now - LATE_S:
                    self._slots.popleft()
                    self.dropped += 1
                if self._paused_until - now > max_wait_s:
                    return self._paused_until - now
                if not self._slots:
                    refused = await self._take(min(self._waiting, MAX_BATCH), max_wait_s)
                    if refused is not None:
                        return refused
                    now = self._clock()
                start = self._slots[0]
                if start - now > max_wait_s:
                    return start - now
                self._slots.popleft()
        finally:
            self._waiting -= 1
        if (wait := start - now) > 0:
            self.waits += 1
            self.waited_s += wait
            await asyncio.sleep(wait)
        return None

    async def _take(self, want: int, max_wait_s: float) -> float | None:
        """Ask for ``want`` slots; None when some were granted, else how long until the next free one."""
        ahead = min(max_wait_s, 300.0)
        params = {
            "worker": self.worker_id,
            "key_ref": self.key_ref,
            "want": want,
            "limit": self.paced_limit,
            "window_s": self.window_s,
            "max_ahead_s": ahead,
        }
        self.statements += 1
        ((granted, first_in_s, spacing_s, paused_for_s),) = await self._fetch("rate_slots", params)
        base = self._clock()
        if paused_for_s and paused_for_s > 0:
            self._paused_until = max(self._paused_until, base + float(paused_for_s))
        if not granted:
            return max(float(first_in_s), 0.0)
        self.granted += int(granted)
        first = base + float(first_in_s)  # a slot in the past (an idle key's one spare) is for now
        self._slots.extend(max(base, first + i * float(spacing_s)) for i in range(int(granted)))
        return None

    def pause(self, seconds: float, reason: str) -> None:
        """No request of this key starts for ``seconds``, here at once and for the other workers by the database."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self.dropped += len(self._slots)
        self._slots.clear()
        self.pauses += 1
        self.statements += 1
        params = {"worker": self.worker_id, "key_ref": self.key_ref, "seconds": seconds, "reason": reason}
        task = asyncio.get_running_loop().create_task(self._record_pause(params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_pause(self, params: dict[str, Any]) -> None:
        try:
            await self._fetch("rate_pause", params)
        except Exception as e:  # the pause holds here anyway; the others meet the 429 themselves
            logs.log("rate_pause_unrecorded", level="warning", key=self.key_ref, error=str(e).strip()[:300])

    def observe(self, status: int | None, headers: Mapping[str, str]) -> None:
        limit = _header_int(headers, "x-ratelimit-limit-default")
        remaining = _header_int(headers, "x-ratelimit-remaining-default")
        reset = _header_float(headers, "x-ratelimit-reset-default")
        if limit and limit != self.limit:
            self.limit = limit
        if status == 429:
            self.pause(reset if reset is not None else self.window_s, "429 Too Many Requests")
        elif remaining is not None and remaining <= 0 and reset is not None:
            self.pause(reset, "the window is used up (X-RateLimit-Remaining-Default: 0)")
