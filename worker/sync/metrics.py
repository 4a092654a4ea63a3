"""Prometheus metrics of the worker (text format 0.0.4), served on 127.0.0.1 when a port is configured.

outbox depth and oldest pending age, in all and per company (read from the database when scraped: undelivered,
leased, dead and held events), attempts by category, a request-latency histogram, and per key (``key_ref``, never
the key): the time spent waiting for its shared rate limit, its 429 pauses, whether Cal.com refuses it, what is in
flight; and the worker's statements per request.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class KeyFigures:
    key_ref: str
    refused: int
    waits: int
    wait_s: float
    pauses: int
    inflight: int
    companies: int


@dataclass(frozen=True)
class QueueStats:
    depth: int
    dead: int
    oldest_pending_s: float
    companies: list[tuple[Any, ...]] = field(default_factory=list)  # company_id, depth, running, dead, held, oldest
    keys: list[KeyFigures] = field(default_factory=list)


class Metrics:
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.latency_counts = [0] * (len(BUCKETS_S) + 1)
        self.latency_sum = 0.0
        self.rate_limit_waits = 0
        self.rate_limit_wait_s = 0.0
        self.lost_leases = 0
        self.key_problems = 0
        self.requests = 0  # requests sent to Cal.com
        self.statements = 0  # statements run against PostgreSQL

    def observe_request(self, category: str, seconds: float) -> None:
        self.attempts[category] += 1
        self.latency_counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.latency_sum += seconds

    def render(self, q: QueueStats) -> str:
        depth, dead, oldest_pending_s = q.depth, q.dead, q.oldest_pending_s
        lines = [
            "# HELP calsync_outbox_depth Outbox events not yet delivered (dead ones excluded).",
            "# TYPE calsync_outbox_depth gauge",
            f"calsync_outbox_depth {depth}",
            "# HELP calsync_outbox_dead Dead outbox events waiting for review.",
            "# TYPE calsync_outbox_dead gauge",
            f"calsync_outbox_dead {dead}",
            "# HELP calsync_outbox_oldest_pending_seconds Age of the oldest undelivered event.",
            "# TYPE calsync_outbox_oldest_pending_seconds gauge",
            f"calsync_outbox_oldest_pending_seconds {oldest_pending_s:.3f}",
            "# HELP calsync_attempts_total HTTP attempts to Cal.com by outcome category.",
            "# TYPE calsync_attempts_total counter",
            *(f'calsync_attempts_total{{category="{c}"}} {n}' for c, n in sorted(self.attempts.items())),
            "# HELP calsync_events_total Events finished by outcome.",
            "# TYPE calsync_events_total counter",
            *(f'calsync_events_total{{outcome="{c}"}} {n}' for c, n in sorted(self.events.items())),
            "# HELP calsync_request_duration_seconds Latency of HTTP requests to Cal.com.",
            "# TYPE calsync_request_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*BUCKETS_S, float("inf")), self.latency_counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else f"{bound}"
            lines.append(f'calsync_request_duration_seconds_bucket{{le="{le}"}} {cumulative}')
        lines += [
            f"calsync_request_duration_seconds_sum {self.latency_sum:.6f}",
            f"calsync_request_duration_seconds_count {cumulative}",
            "# HELP calsync_rate_limit_waits_total Requests that waited for the rate limiter.",
            "# TYPE calsync_rate_limit_waits_total counter",
            f"calsync_rate_limit_waits_total {self.rate_limit_waits}",
            "# HELP calsync_rate_limit_wait_seconds_total Time spent waiting for the rate limiter.",
            "# TYPE calsync_rate_limit_wait_seconds_total counter",
            f"calsync_rate_limit_wait_seconds_total {self.rate_limit_wait_s:.3f}",
            "# HELP calsync_lost_leases_total Completions refused because the lease had been taken back.",
            "# TYPE calsync_lost_leases_total counter",
            f"calsync_lost_leases_total {self.lost_leases}",
            "# HELP calsync_key_problems_total Times Cal.com began refusing a key or the base URL.",
            "# TYPE calsync_key_problems_total counter",
            f"calsync_key_problems_total {self.key_problems}",
            "# HELP calsync_requests_total Requests sent to Cal.com.",
            "# TYPE calsync_requests_total counter",
            f"calsync_requests_total {self.requests}",
            "# HELP calsync_db_statements_total Statements this worker ran against PostgreSQL.",
            "# TYPE calsync_db_statements_total counter",
            f"calsync_db_statements_total {self.statements}",
        ]
        lines += _per_company(q.companies) + _per_key(q.keys)
        return "\n".join(lines) + "\n"


def _per_company(rows: list[tuple[Any, ...]]) -> list[str]:
    out: list[str] = []
    for name, index, kind, text in (
        ("calsync_company_outbox_depth", 1, "gauge", "Undelivered events of the company."),
        ("calsync_company_outbox_running", 2, "gauge", "Events of the company leased to a worker now."),
        ("calsync_company_outbox_dead", 3, "gauge", "Dead events of the company."),
        ("calsync_company_outbox_held", 4, "gauge", "Events held: the company's key is missing or refused."),
        ("calsync_company_oldest_pending_seconds", 5, "gauge", "Age of the company's oldest undelivered event."),
    ):
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        out += [f'{name}{{company="{r[0] if r[0] is not None else "none"}"}} {float(r[index]):g}' for r in rows]
    return out


def _per_key(keys: list[KeyFigures]) -> list[str]:
    out: list[str] = []
    for name, attr, kind, text in (
        ("calsync_key_refused", "refused", "gauge", "1 while Cal.com refuses the key (its companies wait)."),
        ("calsync_key_rate_limit_waits_total", "waits", "counter", "Requests that waited for the key's shared limit."),
        ("calsync_key_rate_limit_wait_seconds_total", "wait_s", "counter", "Time spent waiting for the key's limit."),
        ("calsync_key_rate_limit_pauses_total", "pauses", "counter", "429s (or used-up windows) of the key seen here."),
        ("calsync_key_inflight", "inflight", "gauge", "Appointments of the key in flight in this worker."),
        ("calsync_key_companies", "companies", "gauge", "Companies seen using the key."),
    ):
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        out += [f'{name}{{key="{k.key_ref}"}} {float(getattr(k, attr)):g}' for k in keys]
    return out


async def serve(metrics: Metrics, port: int, queue_stats: Callable[[], Awaitable[QueueStats]]) -> web.AppRunner:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(text=metrics.render(await queue_stats()), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner
