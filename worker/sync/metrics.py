"""Prometheus metrics of the worker (text format 0.0.4), served on 127.0.0.1 when a port is configured.

outbox depth and oldest pending age (read from the database when scraped), attempts by category, a
request-latency histogram, and the time spent waiting for the rate limit.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.latency_counts = [0] * (len(BUCKETS_S) + 1)
        self.latency_sum = 0.0
        self.rate_limit_waits = 0
        self.rate_limit_wait_s = 0.0
        self.lost_leases = 0
        self.key_paused = 0  # 1 while Cal.com refuses the key or base URL
        self.key_problems = 0

    def observe_request(self, category: str, seconds: float) -> None:
        self.attempts[category] += 1
        self.latency_counts[bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.latency_sum += seconds

    def render(self, depth: int, dead: int, oldest_pending_s: float) -> str:
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
            "# HELP calsync_key_paused 1 while Cal.com refuses the key or the base URL (all its syncs wait).",
            "# TYPE calsync_key_paused gauge",
            f'calsync_key_paused{{key="default"}} {self.key_paused}',
            "# HELP calsync_key_problems_total Times Cal.com began refusing the key or base URL.",
            "# TYPE calsync_key_problems_total counter",
            f'calsync_key_problems_total{{key="default"}} {self.key_problems}',
        ]
        return "\n".join(lines) + "\n"


async def serve(
    metrics: Metrics, port: int, queue_stats: Callable[[], Awaitable[tuple[int, int, float]]]
) -> web.AppRunner:
    async def handle(_: web.Request) -> web.Response:
        depth, dead, oldest = await queue_stats()
        return web.Response(text=metrics.render(depth, dead, oldest), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner
