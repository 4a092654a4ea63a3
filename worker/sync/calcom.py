"""HTTP client for the Cal.com API v2 subset the worker uses (httpx), and the request bodies.

Every exchange is returned as an ``Exchange`` to be archived in ``calsync.sync_attempts``: method, path and
body of the request (the Authorization header is never part of it), the response's status, kept headers and
body, its size and whether it was cut, and the duration. Every request goes through the rate limiter.

Answers are read from outside, so with bounds (``worker.sync.http``): at most ``max_response_bytes`` of a body
(``CALSYNC_MAX_RESPONSE_BYTES``), one deadline for the whole exchange, capped headers; redirects are never
followed. What an exchange keeps of an answer is fit for PostgreSQL and free of secrets (``worker.text``): the
client's API key(s) are redacted from headers, body, path and messages before an ``Exchange`` leaves this module,
also when the server reflects them. And every answer has a meaning: a 2xx is OK only when it carries what was
asked for (one usable booking, or a list of them); anything else is ``MALFORMED_RESPONSE`` (the booking may
exist: look it up before creating again), a 3xx is ``REDIRECTED``.

Connections are kept alive and shared by all requests, one client per lane: ``max_connections``
``httpx.AsyncClient`` objects with one connection each, handed out by a queue. One client with a pool of N
connections costs CPU in proportion to N on every request (httpcore scans its pool and checks each idle
socket), which made httpx the worker's bottleneck on this machine; a lane's pool of one does not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import re
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import certifi
import httpx

from worker import text
from worker.sync import http
from worker.sync.categories import Category, Verdict, classify
from worker.sync.ratelimit import Limiter

API_VERSION = "2024-08-13"
MAX_RESPONSE_BYTES = http.MAX_RESPONSE_BYTES  # CALSYNC_MAX_RESPONSE_BYTES
DISCOVER_PAGE = 250  # bookings per page of ``find_for`` (the caller's ``skip`` steps by it)
# response headers worth keeping (the rest is transport noise)
KEPT_HEADERS = (
    "x-request-id",
    "x-ratelimit-limit-default",
    "x-ratelimit-remaining-default",
    "x-ratelimit-reset-default",
    "content-type",
    "retry-after",
    "location",
)
# rate-limit headers are numbers others compute with: kept only when they are, within these bounds
NUMERIC_HEADERS = {
    "x-ratelimit-limit-default": 1_000_000.0,
    "x-ratelimit-remaining-default": 1_000_000.0,
    "x-ratelimit-reset-default": 300.0,  # Cal.com blocks for 60 s; a longer pause is not believed
}
Expect = Literal["booking", "bookings", "object"]  # what a 2xx's data must be: a booking, a list of them, any object


@dataclass
class Exchange:
    """One HTTP attempt, as archived. ``text``, ``headers``, ``path``, ``request_body`` and the verdict's message
    are clean and redacted; ``text`` is capped (``worker.text.BODY_CAP``). ``response_size`` is the body's size in
    bytes as Cal.com sent it (inflated) or declared, None if unknown; ``truncated``: ``text`` is not all of it."""

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
    response_size: int | None = None
    truncated: bool = False

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
            "response_size": self.response_size,
            "response_truncated": self.truncated,
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
        limiter: Limiter,
        *,
        timeout_s: float = 15.0,
        max_connections: int = 16,
        max_rate_wait_s: float = 10.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        secrets: Iterable[str] = (),
    ) -> None:
        self.limiter = limiter
        self.max_rate_wait_s = max_rate_wait_s
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        # what is never kept nor logged: this client's key, and any other key added (per-company keys)
        self.secrets: set[str] = {api_key, *secrets}
        # one TLS context for all lanes (loading the CA store takes 20 ms), with httpx's own CA bundle
        tls = ssl.create_default_context(cafile=certifi.where())
        self._clients = [
            httpx.AsyncClient(
                verify=tls,
                base_url=base_url.rstrip("/"),
                headers={
                    "Authorization": f"Bearer {api_key}",
                    "cal-api-version": API_VERSION,
                    "Accept-Encoding": http.ACCEPT_ENCODING,
                },
                timeout=httpx.Timeout(timeout_s),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                follow_redirects=False,  # a redirect is answered as REDIRECTED, never followed with the key
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
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None,
        params: dict[str, str] | None,
        api_version: str | None,
    ) -> http.Answer:
        client = await self._lanes.get()
        try:
            return await http.exchange(
                client,
                method,
                path,
                json_body=json_body,
                params=params,
                headers={"cal-api-version": api_version} if api_version else None,
                deadline_s=self.timeout_s,
                max_bytes=self.max_response_bytes,
            )
        finally:
            self._lanes.put_nowait(client)

    def _message(self, verdict: Verdict) -> Verdict:
        return Verdict(verdict.category, text.message(verdict.message, self.secrets), verdict.field)

    async def send(
        self,
        action: str,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        phase_id: int | None = None,
        expects: Expect = "booking",
        api_version: str | None = None,
    ) -> Exchange:
        """One request; ``expects`` is what a 2xx must carry to be OK: one booking, a list of them, or an object.
        ``api_version``: the ``cal-api-version`` of this request, when it is not the bookings' one."""
        shown = text.message(path + ("?" + str(httpx.QueryParams(params)) if params else ""), self.secrets)
        archived_body = text.scrub(json_body, self.secrets) if json_body is not None else None
        if (wait := await self.limiter.acquire(self.max_rate_wait_s)) is not None:
            # not sent: the rate limit is exhausted for longer than a lease should wait; retried after it
            verdict = Verdict(
                Category.RATE_LIMITED, f"not sent: the rate limit allows the next request in {wait:.0f} s"
            )
            ex = Exchange(
                action,
                method,
                shown,
                archived_body,
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
            answer = await self._request(method, path, json_body, params, api_version)
        except (httpx.HTTPError, http.TransportError, OSError) as e:
            took = (time.perf_counter() - t0) * 1000
            verdict = self._message(classify(None, None, "", f"{type(e).__name__}: {e}".rstrip(": ")))
            return Exchange(action, method, shown, archived_body, None, {}, None, None, took, verdict, phase_id)
        took = (time.perf_counter() - t0) * 1000
        headers = self._headers(answer.headers)
        self.limiter.observe(answer.status, headers)
        full = text.readable(answer.body, self.secrets, cut=answer.truncated)
        stored, _, capped = text.cap(full, text.BODY_CAP)
        body = None if answer.problem else parse_json(full)
        if body is not None and "\\u" in full:  # JSON escapes can spell a NUL, a lone surrogate or a key
            body = text.scrub(body, self.secrets)
        location = headers.get("location")
        verdict = classify(answer.status, body, stored, answer.problem, location=location)
        if verdict.category == Category.OK and (problem := shape_problem(body, expects)):
            verdict = Verdict(
                Category.MALFORMED_RESPONSE, f"HTTP {answer.status} without a usable {expects}: {problem}"
            )
        return Exchange(
            action,
            method,
            shown,
            archived_body,
            answer.status,
            headers,
            stored if answer.body or not answer.problem else None,
            body,
            took,
            self._message(verdict),
            phase_id,
            response_size=answer.size,
            truncated=answer.truncated or capped,
        )

    def _headers(self, headers: httpx.Headers) -> dict[str, str]:
        """The kept headers, clean, redacted and capped; numeric rate-limit headers only when they are numbers."""
        kept: dict[str, str] = {}
        for name, value in headers.items():  # httpx gives lower-case names, repeated headers joined
            if name not in KEPT_HEADERS:
                continue
            value = text.message(value.strip(), self.secrets, text.HEADER_CAP)
            if (bound := NUMERIC_HEADERS.get(name)) is not None:
                try:
                    number = float(value)
                except ValueError:
                    continue
                if not math.isfinite(number) or number < 0:
                    continue
                value = value if number <= bound else f"{bound:g}"
            kept[name] = value
        return kept

    # -- the calls ------------------------------------------------------------------------------
    async def create(self, body: dict[str, Any], phase_id: int | None) -> Exchange:
        return await self.send("create", "POST", "/v2/bookings", json_body=body, phase_id=phase_id)

    async def cancel(self, uid: str, reason: str, phase_id: int | None) -> Exchange:
        return await self.send(
            "cancel", "POST", f"/v2/bookings/{uid}/cancel", json_body={"cancellationReason": reason}, phase_id=phase_id
        )

    async def read(self, uid: str, phase_id: int | None) -> Exchange:
        """One booking (or, for a recurring series, the list of its occurrences)."""
        return await self.send("read", "GET", f"/v2/bookings/{uid}", phase_id=phase_id, expects="object")

    async def reschedule(self, uid: str, start: dt.datetime, reason: str, phase_id: int | None) -> Exchange:
        body = {"start": iso(start), "reschedulingReason": reason}
        return await self.send(
            "reschedule", "POST", f"/v2/bookings/{uid}/reschedule", json_body=body, phase_id=phase_id
        )

    async def find(
        self, event_type_id: int, start: dt.datetime, end: dt.datetime, email: str | None, phase_id: int | None
    ) -> Exchange:
        # a window wide enough for our booking whatever length Cal.com gave it (matched by metadata, not by time)
        params = {
            "eventTypeId": str(event_type_id),
            "afterStart": iso(start - dt.timedelta(days=1)),
            "beforeEnd": iso(max(end, start) + dt.timedelta(days=2)),
            "take": "100",
        }
        if email:
            params["attendeeEmail"] = email
        return await self.send("lookup", "GET", "/v2/bookings", params=params, phase_id=phase_id, expects="bookings")

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
            "take": str(DISCOVER_PAGE),
            "skip": str(skip),
        }
        if email:
            params["attendeeEmail"] = email
        if window:
            params["afterStart"] = iso(window[0])
            params["beforeEnd"] = iso(window[1])
        return await self.send("discover", "GET", "/v2/bookings", params=params, expects="bookings")


def iso(t: dt.datetime) -> str:
    """Cal.com wants ISO-8601 in UTC."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def booking_data(exchange: Exchange) -> dict[str, Any] | None:
    """The booking an OK exchange carries (only a usable one is OK: ``shape_problem``)."""
    if exchange.verdict.category != Category.OK:
        return None
    data = exchange.body.get("data") if isinstance(exchange.body, dict) else None
    return data if isinstance(data, dict) else None


def parse_json(raw: str) -> Any:
    """A body as JSON, or None when it is not (or too deeply nested to parse)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


_UID = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?")
_BIGINT = 2**63


def shape_problem(body: object, expects: Expect) -> str | None:
    """Why an answer whose envelope is a success is still no usable answer to what was asked, or None.

    One booking (create, reschedule, cancel): ``data`` an object with a string ``uid`` (of a uid's characters),
    an integer ``id``, and start, end, event type, status and metadata of the right types where present. A list
    (lookups): ``data`` a list of such bookings, ``pagination`` an object if present. An object (other reads):
    ``data`` an object, its fields checked by the caller. Only what passes is used:
    every value taken from it goes to the database as it is.
    """
    data = body.get("data") if isinstance(body, dict) else None
    if expects == "booking":
        return booking_problem(data)
    if expects == "object":
        return None if isinstance(data, dict) else f"data is {_kind(data)}, not an object"
    if not isinstance(data, list):
        return f"data is {_kind(data)}, not a list of bookings"
    for i, b in enumerate(data):
        if problem := booking_problem(b):
            return f"booking {i}: {problem}"
    assert isinstance(body, dict)
    page = body.get("pagination")
    if page is not None and not (isinstance(page, dict) and isinstance(page.get("hasNextPage", False), bool)):
        return "pagination is not an object with a boolean hasNextPage"
    return None


def booking_problem(data: object) -> str | None:
    if not isinstance(data, dict):
        return f"data is {_kind(data)}, not a booking"
    uid = data.get("uid")
    if not isinstance(uid, str) or not _UID.fullmatch(uid):
        return f"the booking's uid is {_kind(uid)}" if not isinstance(uid, str) else "the booking's uid is not one"
    booking_id = data.get("id")
    if type(booking_id) is not int or not 0 < booking_id < _BIGINT:
        return f"the booking's id is {_kind(booking_id)}, not a positive integer"
    for key in ("start", "end"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and _is_time(value)):
            return f"the booking's {key} is not an ISO-8601 time"
    event_type = data.get("eventTypeId")
    if event_type is not None and (type(event_type) is not int or not 0 < event_type < _BIGINT):
        return "the booking's eventTypeId is not a positive integer"
    if not isinstance(data.get("status", ""), str):
        return "the booking's status is not a string"
    meta = data.get("metadata")
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(v, str | int | float | bool) for v in meta.values())
    ):
        return "the booking's metadata is not an object of plain values"
    return None


def _is_time(value: str) -> bool:
    if not _TIME.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _kind(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
