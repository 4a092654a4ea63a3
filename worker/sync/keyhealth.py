"""Whether Cal.com accepts the key and the base URL: checked at start, watched while running.

A 401/403, a route that does not exist (404 "Cannot POST /v2/v2/bookings") or a redirect is a problem of the key
or its base URL, not of the appointment that met it (``categories.KEY_SCOPE``): the worker pauses the key (claims
nothing), reports it once (``calsync.report_key_problem``, a critical alert in remediation.sync_health), and every
``probe_s`` asks Cal.com again with one cheap authenticated call (GET /v2/me). When it answers, the problem is
cleared and the syncs, which stayed due and counted no attempt, drain by themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from worker.sync.calcom import CalcomClient, Exchange
from worker.sync.categories import KEY_SCOPE, Category, Verdict

PROBE_API_VERSION = "2024-08-13"  # /v2/me takes any version


@dataclass
class KeyHealth:
    key_ref: str = "default"  # how the key is named in the database and the logs (never the key)
    problem: Verdict | None = None
    next_probe: float = 0.0

    def paused_for(self) -> float:
        return max(0.0, self.next_probe - time.monotonic()) if self.problem else 0.0

    def refuse(self, verdict: Verdict, probe_s: float) -> bool:
        """Pause the key; True when this is a new problem (to be reported)."""
        new = self.problem is None or self.problem.category != verdict.category
        self.problem = verdict
        self.next_probe = time.monotonic() + probe_s
        return new


def is_key_problem(verdict: Verdict) -> bool:
    return verdict.category in KEY_SCOPE


async def probe(client: CalcomClient) -> Exchange:
    """One authenticated call that changes nothing: is the base URL Cal.com's and the key valid?"""
    return await client.send("probe", "GET", "/v2/me", expects="object", api_version=PROBE_API_VERSION)


def start_refusal(ex: Exchange) -> str | None:
    """Why the worker must not start, as one line; None when Cal.com accepted the key."""
    if ex.verdict.category == Category.OK:
        return None
    what = {
        Category.AUTH: "Cal.com refuses the API key (CALCOM_API_KEY / CALCOM_API_KEY_FILE)",
        Category.ROUTE_NOT_FOUND: "the base URL is not Cal.com's API (CALCOM_BASE_URL)",
        Category.REDIRECTED: "the base URL redirects (CALCOM_BASE_URL); use the address it names, if it is Cal.com's",
        Category.NETWORK: "Cal.com cannot be reached (CALCOM_BASE_URL)",
    }.get(ex.verdict.category, f"Cal.com answered {ex.status} to GET /v2/me")
    return f"{what}: {ex.verdict.message}"
