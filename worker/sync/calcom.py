"""HTTP client for the Cal.com API v2 subset the worker uses (httpx), and the request bodies.

Every exchange is returned as an ``Exchange`` to be archived in full in ``calsync.sync_attempts``:
method, path and body of the request (the Authorization header is never part of it), the response's
status, headers and body, and the duration. Every request goes through the rate limiter and has a
timeout. Connections are kept alive and shared by all requests, one client per lane: ``max_connections``
``httpx.AsyncClient`` objects with one connection each, handed out by a queue. One client with a pool of N
connections costs CPU in proportion to N on every request (httpcore scans its pool and checks each idle
socket), which made httpx the worker's bottleneck on this machine; a lane's pool of one does not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import certifi
import httpx

from worker.sync.categories import Category, Verdict, classify
from worker.sync.ratelimit import RateLimiter

API_VERSION = "2024-08-13"
# response headers worth keeping (the rest is transport noise)
KEPT_HEADERS = (
    "x-request-id",
    "x-ratelimit-limit-default",
    "x-ratelimit-remaining-default",
    "x-ratelimit-reset-default",
    "content-type",
    "retry-after",
)


@dataclass
class Exchange:
    """One HTTP attempt, as archived."""

    action: str
    method: str
    path: str
    request_body: dict[str, Any] | None
    status: int | None
    headers: dict[str, str]
    text: str | None
    body: Any
    duration_ms: float
    verdict: Verdict
    phase_id: int | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    sent: bool = True  # False: held back by the rate limiter, nothing went over the wire

    def archive(self, attempt: int) -> dict[str, Any]:
        return {
            "phase_id": self.phase_id,
            "action": self.action,
            "attempt": attempt,
            "request_method": self.method,
            "request_path": self.path,
            "request_body": self.request_body,
            "response_status": self.status,
            "response_headers": self.headers or None,
            "response_body": self.text,
            "duration_ms": round(self.duration_ms, 3),
            "category": str(self.verdict.category),
            "retryable": self.verdict.retryable if self.verdict.category != Category.OK else None,
            "error": self.verdict.message or None,
            "at": self.at.isoformat(),
        }


class CalcomClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        limiter: RateLimiter,
        *,
        timeout_s: float = 15.0,
        max_connections: int = 16,
        max_rate_wait_s: float = 10.0,
    ) -> None:
        self.limiter = limiter
        self.max_rate_wait_s = max_rate_wait_s
        # one TLS context for all lanes (loading the CA store takes 20 ms), with httpx's own CA bundle
        tls = ssl.create_default_context(cafile=certifi.where())
        self._clients = [
            httpx.AsyncClient(
                verify=tls,
                base_url=base_url.rstrip("/"),
                headers={"Authorization": f"Bearer {api_key}", "cal-api-version": API_VERSION},
                timeout=httpx.Timeout(timeout_s),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            for _ in range(max(1, max_connections))
        ]
        self._lanes: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in self._clients:
            self._lanes.put_nowait(client)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def _request(
        self, method: str, path: str, json_body: dict[str, Any] | None, params: dict[str, str] | None
    ) -> httpx.Response:
        client = await self._lanes.get()
        try:
            return await client.request(method, path, json=json_body, params=params)
        finally:
            self._lanes.put_nowait(client)

    async def send(
        self,
        action: str,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        phase_id: int | None = None,
    ) -> Exchange:
        shown = path + ("?" + str(httpx.QueryParams(params)) if params else "")
        if (wait := await self.limiter.acquire(self.max_rate_wait_s)) is not None:
            # not sent: the rate limit is exhausted for longer than a lease should wait; retried after it
            verdict = Verdict(
                Category.RATE_LIMITED, f"not sent: the rate limit allows the next request in {wait:.0f} s"
            )
            ex = Exchange(
                action,
                method,
                shown,
                json_body,
                None,
                {"x-ratelimit-reset-default": f"{wait:.1f}"},
                None,
                None,
                0.0,
                verdict,
                phase_id,
            )
            ex.sent = False
            return ex
        t0 = time.perf_counter()
        try:
            response = await self._request(method, path, json_body, params)
        except httpx.HTTPError as e:
            took = (time.perf_counter() - t0) * 1000
            verdict = classify(action, None, None, "", f"{type(e).__name__}: {e}".rstrip(": "))
            return Exchange(action, method, shown, json_body, None, {}, None, None, took, verdict, phase_id)
        took = (time.perf_counter() - t0) * 1000
        text = response.text
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = None
        headers = {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}
        self.limiter.observe(response.status_code, response.headers)
        verdict = classify(action, response.status_code, body, text)
        return Exchange(
            action, method, shown, json_body, response.status_code, headers, text, body, took, verdict, phase_id
        )

    # -- the calls ------------------------------------------------------------------------------
    async def create(self, body: dict[str, Any], phase_id: int | None) -> Exchange:
        return await self.send("create", "POST", "/v2/bookings", json_body=body, phase_id=phase_id)

    async def cancel(self, uid: str, reason: str, phase_id: int | None) -> Exchange:
        return await self.send(
            "cancel", "POST", f"/v2/bookings/{uid}/cancel", json_body={"cancellationReason": reason}, phase_id=phase_id
        )

    async def reschedule(self, uid: str, start: dt.datetime, reason: str, phase_id: int | None) -> Exchange:
        body = {"start": iso(start), "reschedulingReason": reason}
        return await self.send(
            "reschedule", "POST", f"/v2/bookings/{uid}/reschedule", json_body=body, phase_id=phase_id
        )

    async def find(
        self, event_type_id: int, start: dt.datetime, end: dt.datetime, email: str | None, phase_id: int | None
    ) -> Exchange:
        params = {
            "eventTypeId": str(event_type_id),
            "afterStart": iso(start - dt.timedelta(minutes=1)),
            "beforeEnd": iso(end + dt.timedelta(minutes=1)),
            "take": "100",
        }
        if email:
            params["attendeeEmail"] = email
        return await self.send("lookup", "GET", "/v2/bookings", params=params, phase_id=phase_id)

    async def find_for(
        self,
        event_type_ids: list[int],
        email: str | None,
        window: tuple[dt.datetime, dt.datetime] | None,
        skip: int = 0,
    ) -> Exchange:
        """List bookings of these event types (and attendee e-mail, or time window) to find an appointment's."""
        params = {
            "eventTypeIds": ",".join(str(i) for i in sorted(set(event_type_ids))),
            "take": "250",
            "skip": str(skip),
        }
        if email:
            params["attendeeEmail"] = email
        if window:
            params["afterStart"] = iso(window[0])
            params["beforeEnd"] = iso(window[1])
        return await self.send("discover", "GET", "/v2/bookings", params=params)


def iso(t: dt.datetime) -> str:
    """Cal.com wants ISO-8601 in UTC."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def booking_data(exchange: Exchange) -> dict[str, Any] | None:
    data = exchange.body.get("data") if isinstance(exchange.body, dict) else None
    return data if isinstance(data, dict) else None
