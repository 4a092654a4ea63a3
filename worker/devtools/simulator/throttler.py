"""`Throttler`: per-key fixed windows with a block, like Cal.com's CustomThrottlerGuard (calcom-api.md §2 "Rate
limit"; apps/api/v2/src/lib/throttler/throttler-guard.ts). Named after the guard, not "rate limiter": the worker
has its own client-side RateLimiter (worker/sync/ratelimit.py), a different thing.

Each tracker (API key hash, access token hash, or client IP) gets `limit` requests per `window_s` window. The
request that exceeds the limit is refused and starts a block of `block_s` seconds during which every request of
that tracker is refused; when the block ends a fresh window starts. `reset_s` is the number of seconds (rounded
up) until the window resets, or until the block expires while blocked: the value of `X-RateLimit-Reset-Default`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache


@lru_cache(maxsize=1024)
def token_tracker(token: str) -> str:
    """The tracker of a bearer token (what GET /_sim/bookings and /_sim/stats name a key by)."""
    return _token_tracker(token)


@lru_cache(maxsize=1024)
def _token_tracker(token: str) -> str:
    kind = "api_key_" if token.startswith("cal_") else "access_token_"
    return kind + hashlib.sha256(token.encode()).hexdigest()[:32]  # keys are never kept or shown in clear


def tracker(authorization: str | None, remote: str | None) -> str:
    """Whom a request counts against: its bearer token (valid or not), else the client IP."""
    if authorization:
        token = authorization.replace("Bearer ", "", 1)
        if token:
            return _token_tracker(token)
    return f"ip_{remote}"


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit-Default": str(self.limit),
            "X-RateLimit-Remaining-Default": str(self.remaining),
            "X-RateLimit-Reset-Default": str(self.reset_s),
        }


class _Bucket:
    __slots__ = ("blocked_until", "count", "window_end")

    def __init__(self, window_end: float) -> None:
        self.window_end = window_end
        self.count = 0
        self.blocked_until = 0.0


class Throttler:
    def __init__(
        self, limit: int, window_s: float, block_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.block_s = block_s
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def configure(self, limit: int, window_s: float, block_s: float) -> None:
        """New settings; all trackers start over."""
        self.limit, self.window_s, self.block_s = limit, window_s, block_s
        self.reset()

    def reset(self) -> None:
        self._buckets.clear()

    def hit(self, tracker: str) -> RateDecision:
        now = self._clock()
        b = self._buckets.get(tracker)
        if b is not None and b.blocked_until:
            if now < b.blocked_until:
                return RateDecision(False, self.limit, 0, math.ceil(b.blocked_until - now))
            b = None  # block over: a fresh window
        if b is None or now >= b.window_end:
            b = self._buckets[tracker] = _Bucket(now + self.window_s)
        b.count += 1
        if b.count > self.limit:
            if self.block_s > 0:
                b.blocked_until = now + self.block_s
                return RateDecision(False, self.limit, 0, math.ceil(self.block_s))
            return RateDecision(False, self.limit, 0, math.ceil(b.window_end - now))
        return RateDecision(True, self.limit, self.limit - b.count, math.ceil(b.window_end - now))
