"""Fault injection for the routed /v2 endpoints (bookings, event types, /v2/me): which fault (if any) a request
gets, and its extra latency.

One seeded `random.Random` makes runs reproducible for a given request order (`--seed`). Per request one uniform
draw picks at most one fault, the rates being consecutive slices of [0, 1): so each rate is the exact per-request
probability of its fault. Faults that only make sense on create (reset after store, false negative) yield no
fault on other endpoints. When all rates are zero no number is drawn at all.

- fail_5xx: answer 500 in the DB-fault shape, nothing processed or stored;
- timeout: process normally, then hang `timeout_hang_s` before answering;
- reset_after_store: (create) store, then abort the TCP connection without an answer;
- false_negative: (create) store, then answer 400 with `false_negative_message`;
- malformed: process normally, then answer the 2xx with a body that is not valid JSON;
- conflict: (create) answer the raw 409 booking_conflict_error of a lost idempotency race, nothing stored.

Scripted faults (`script(op, fault)`, POST /_sim/faults): the next request of that operation gets exactly that
fault (or, scripted as None, none), before and without a random draw, each entry used once and in order; a test
pins the one request it wants to fail (the second reschedule, say) instead of hunting for a seed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from enum import StrEnum

from aiohttp import web

from worker.devtools.simulator import errors
from worker.devtools.simulator.config import SimulatorConfig


class Fault(StrEnum):
    FAIL_5XX = "fail_5xx"
    TIMEOUT = "timeout"
    RESET_AFTER_STORE = "reset_after_store"
    FALSE_NEGATIVE = "false_negative"
    MALFORMED = "malformed"
    CONFLICT = "conflict"


CREATE_ONLY = frozenset({Fault.RESET_AFTER_STORE, Fault.FALSE_NEGATIVE, Fault.CONFLICT})


class FaultInjector:
    def __init__(self, config: SimulatorConfig) -> None:
        self.rng = random.Random(config.seed)
        self.counts: Counter[Fault] = Counter()  # faults that took effect
        self.scripted: dict[str, deque[Fault | None]] = {}  # per operation: the faults its next requests get
        self.configure(config)

    def configure(self, config: SimulatorConfig, reseed: bool = False) -> None:
        if reseed:
            self.rng.seed(config.seed)
        self._slices = [
            (Fault.FAIL_5XX, config.fail_5xx_rate),
            (Fault.TIMEOUT, config.timeout_rate),
            (Fault.RESET_AFTER_STORE, config.reset_after_store_rate),
            (Fault.FALSE_NEGATIVE, config.false_negative_rate),
            (Fault.MALFORMED, config.malformed_rate),
            (Fault.CONFLICT, config.conflict_rate),
        ]
        self._any = any(rate > 0 for _, rate in self._slices)
        self._latency_ms = config.latency_ms
        self.hang_s = config.timeout_hang_s
        self.false_negative_message = config.false_negative_message

    def latency_s(self) -> float:
        low, high = self._latency_ms
        if high <= 0:
            return 0.0
        return (low if high == low else self.rng.uniform(low, high)) / 1000.0

    def script(self, op: str, fault: Fault | None) -> int:
        """The next request of `op` gets `fault` (None: none); returns how many are now scripted for `op`."""
        if fault is not None and fault in CREATE_ONLY and op != "create":
            raise ValueError(f"{fault} is a fault of create only")
        queue = self.scripted.setdefault(op, deque())
        queue.append(fault)
        return len(queue)

    def decide(self, op: str) -> Fault | None:
        """The fault for one request of operation `op` (create, get, list, cancel, reschedule)."""
        if queue := self.scripted.get(op):
            return queue.popleft()  # scripted: no draw, so the random faults' sequence stays as seeded
        if not self._any:
            return None
        u = self.rng.random()
        edge = 0.0
        for kind, rate in self._slices:
            edge += rate
            if u < edge:
                if kind in CREATE_ONLY and op != "create":
                    return None
                return kind
        return None

    async def apply(
        self, fault: Fault, request: web.Request, status: int, body: errors.JSON, path: str
    ) -> tuple[int, errors.JSON, str | None] | None:
        """After the handler ran: the (status, body, raw text) to send instead, or None if the connection was cut.

        A create-only fault takes effect only when the create succeeded (something was stored); a malformed body
        only replaces a 2xx answer.
        """
        if fault is Fault.RESET_AFTER_STORE and status == 201:
            self.counts[fault] += 1
            if request.transport is not None:
                request.transport.abort()
            return None
        if fault is Fault.FALSE_NEGATIVE and status == 201:
            self.counts[fault] += 1
            return 400, errors.bad_request(self.false_negative_message, path).body, None
        if fault is Fault.TIMEOUT:
            self.counts[fault] += 1
            await asyncio.sleep(self.hang_s)
        elif fault is Fault.MALFORMED and 200 <= status < 300:
            self.counts[fault] += 1
            full = errors.dumps(body)
            return status, body, full[: max(1, len(full) // 2)]
        return status, body, None
