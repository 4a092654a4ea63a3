"""One lane per Cal.com key: its HTTP client, event type cache, shared rate limit and health, and its companies.

Every company's bookings go out with the company's own key, or the fallback (``worker.sync.keyring``); a key
is a lane. A lane is *blocked* while Cal.com refuses its key, while its rate limit is paused (a 429 seen by
any worker) or its schedule is full for longer than a request may wait, and while ``key_concurrency`` of its
appointments are in flight here: the claim then leaves its companies alone (``skipped``), so a lane with a
backlog never fills the worker, and the other companies' bookings go first. A rotated key gets a new client
(the old one finishes what it sends and is closed at shutdown) and, if it was refused, is probed at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from worker.sync.calcom import CalcomClient
from worker.sync.event_types import EventTypeCache
from worker.sync.keyhealth import KeyHealth
from worker.sync.keyring import Credential, NoKey
from worker.sync.ratelimit import SharedRateLimiter
from worker.sync.settings import WorkerSettings

Fetch = Callable[[str, dict[str, Any]], Awaitable[list[tuple[Any, ...]]]]


@dataclass
class Lane:
    key_ref: str
    api_key: str = field(repr=False)
    client: CalcomClient
    event_types: EventTypeCache
    limiter: SharedRateLimiter
    health: KeyHealth
    companies: set[int] = field(default_factory=set)
    inflight: int = 0

    def blocked(self, key_concurrency: int, max_wait_s: float) -> bool:
        return (
            self.health.problem is not None
            or self.inflight >= key_concurrency
            or self.limiter.paused_for() > 0
            or self.limiter.backlog_s() > max_wait_s
        )


class Lanes:
    def __init__(self, settings: WorkerSettings, fetch: Fetch) -> None:
        self.s = settings
        self._fetch = fetch
        self.lanes: dict[str, Lane] = {}
        self.held: dict[int, NoKey] = {}  # companies without a usable key: not claimed until theirs is there
        self._retired: list[CalcomClient] = []

    def _client(self, api_key: str, limiter: SharedRateLimiter) -> CalcomClient:
        return CalcomClient(
            self.s.base_url,
            api_key,
            limiter,
            timeout_s=self.s.request_timeout_s,
            max_response_bytes=self.s.max_response_bytes,
            max_connections=max(1, min(self.s.key_concurrency, self.s.concurrency)),
            max_rate_wait_s=self.s.max_rate_wait_s,
        )

    def lane(self, cred: Credential, company_id: int | None) -> Lane:
        """The lane of this key (made, or given the rotated key); the company is noted as one of its own."""
        lane = self.lanes.get(cred.key_ref)
        if lane is None:
            limiter = SharedRateLimiter(
                self._fetch, self.s.worker_id, cred.key_ref, self.s.rate_limit, self.s.rate_window_s
            )
            client = self._client(cred.api_key, limiter)
            lane = Lane(
                cred.key_ref,
                cred.api_key,
                client,
                EventTypeCache(client, self.s.event_type_ttl_s),
                limiter,
                KeyHealth(key_ref=cred.key_ref),
            )
            self.lanes[cred.key_ref] = lane
        elif lane.api_key != cred.api_key:  # rotated: new requests use the new key
            self._retired.append(lane.client)
            lane.client = self._client(cred.api_key, lane.limiter)
            lane.event_types = EventTypeCache(lane.client, self.s.event_type_ttl_s)
            lane.api_key = cred.api_key
            if lane.health.problem is not None:
                lane.health.next_probe = 0.0  # try the new key now
        if company_id is not None and company_id not in lane.companies:
            for other in self.lanes.values():  # a company whose own key went away now uses the fallback
                other.companies.discard(company_id)
            lane.companies.add(company_id)
        return lane

    def skipped(self) -> list[int]:
        """The companies the next claim leaves alone: held ones, and those of blocked lanes."""
        out = set(self.held)
        for lane in self.lanes.values():
            if lane.blocked(self.s.key_concurrency, self.s.max_rate_wait_s):
                out |= lane.companies
        return sorted(out)

    def statements(self) -> int:
        return sum(lane.limiter.statements for lane in self.lanes.values())

    async def aclose(self) -> None:
        for lane in self.lanes.values():
            await lane.client.aclose()
        for client in self._retired:
            await client.aclose()
