"""A token bucket per API key that follows Cal.com's rate-limit headers.

Cal.com counts requests per key in fixed windows (120 per 60 s by default) and, once over, refuses every
request of that key for a block period (60 s) with 429 and no Retry-After. So the bucket is smooth (one
token of burst) and paced slightly under the limit, and it reads the ``X-RateLimit-*-Default`` headers:
when the window is nearly used up it waits for the window's reset, and after a 429 it waits out the block.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping


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
