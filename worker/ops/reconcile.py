"""`calsync reconcile`: what Cal.com holds against what we synced, findings recorded, ours repaired.

Cal.com's webhooks are fire-and-forget in older versions, so what they missed (outside reschedules, outside
cancels, a booking made while a reply was lost) is found by polling. Python fetches and pages; SQL decides:

1. ``remediation.reconcile_event_types()`` names the event types; each is listed (``GET /v2/bookings`` with
   ``eventTypeId``, ``afterStart`` and ``sortStart=asc``, 250 a page) from ``--since``. Cal.com orders pages by
   start time only, which is not unique, so pages are keyed by time (the next page starts at the last start seen,
   repeats dropped by uid), not by ``skip``; a page that brings nothing new is an error, never a silent gap.
2. Every booking of ours in the window (``remediation.reconcile_ours``) that the listing did not show is read by
   uid (a 404 is a fact too), and every successor Cal.com names (``rescheduledToUid``) is read, at most 5 hops.
3. What Cal.com holds goes to ``remediation.reconcile_bookings`` as ``calsync.calcom_booking`` rows
   (``worker/ops/reconcile_contract.py``); it records the findings (a dry run records nothing) and returns them.
4. ``--repair``: ``remediation.repair_reconcile_findings`` fixes our rows (logged, undoable), then the bookings
   calsync made that no live appointment holds are cancelled here through the Cal.com client and recorded
   (``remediation.record_reconcile_cancellation``).

Every request goes through ``CalcomClient`` (bounded transport, rate limiter; the key never leaves it). Bounded:
at most ``max_pages`` pages per event type and ``max_bookings`` bookings in all, else the command stops with
one line saying which cap and how to narrow the window, and records nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec
from psycopg.rows import dict_row

from worker.db import connect, query
from worker.errors import CliError, Exit
from worker.ops import runbook
from worker.ops.reconcile_contract import CalcomBooking, ReconcileFinding, decode_finding, encode_bookings
from worker.sync import settings
from worker.sync.appointment import MAX_SUCCESSORS, META_APPOINTMENT, META_PHASE
from worker.sync.calcom import DISCOVER_PAGE, CalcomClient, Exchange, booking_problem, iso
from worker.sync.categories import RETRYABLE, Category
from worker.sync.planning import parse_time
from worker.sync.ratelimit import RateLimiter
from worker.sync.settings import Integer, Setting

TRIES = 4  # per request, for answers worth retrying (5xx, network, 429 after its block)
REASON_CAP = 200
META_CAP = 40


class ReconcileError(CliError):
    """Cal.com could not be read completely: nothing was recorded (exit 1)."""


@dataclass
class Options:
    database_url: str
    base_url: str
    api_key: str
    since: dt.datetime
    until: dt.datetime | None = None
    dry_run: bool = False
    repair: bool = False
    reason: str | None = None
    max_pages: int = 200
    max_bookings: int = 50_000
    rate_limit: int = 30  # of Cal.com's 120 per minute for the key: the worker keeps the rest
    rate_window_s: float = 60.0
    request_timeout_s: float = 15.0
    max_response_bytes: int = 1024 * 1024
    operator: str | None = None


@dataclass
class Result:
    run_id: str
    dry_run: bool
    since: dt.datetime
    until: dt.datetime | None
    event_types: list[int] = field(default_factory=list)
    listed: int = 0  # bookings Cal.com listed
    read: int = 0  # bookings read by uid (ours not listed, successors)
    ours: int = 0
    unsettled: int = 0
    findings: list[ReconcileFinding] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[dict[str, Any]] = field(default_factory=list)
    not_cancelled: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    repair_ran: bool = False

    def open_after(self) -> int:
        """Findings left for a person or not repaired (what the exit code reports)."""
        if not self.repair_ran:
            return len(self.findings)
        done = {c["finding_id"] for c in self.cancelled} | {
            r["row_id"] for r in self.repaired if r["table_name"] == "reconcile_findings" and _resolved(r)
        }
        return sum(1 for f in self.findings if f.id not in done)

    def to_json(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for f in self.findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "event_types": self.event_types,
            "bookings_listed": self.listed,
            "bookings_read": self.read,
            "requests": self.requests,
            "ours_checked": self.ours,
            "unsettled": self.unsettled,
            "findings": [msgspec.to_builtins(f) for f in self.findings],
            "by_kind": kinds,
            "repaired": self.repaired,
            "cancelled_at_calcom": self.cancelled,
            "not_cancelled": self.not_cancelled,
            "open_after": self.open_after(),
        }


def _resolved(change: dict[str, Any]) -> bool:
    after = change.get("after") or {}
    return isinstance(after, dict) and after.get("resolved_at") is not None


# -- reading Cal.com ------------------------------------------------------------------------------
def _text(value: object, cap: int) -> str | None:
    if isinstance(value, bool) or value is None:
        return None if value is None else ("true" if value else "false")
    if isinstance(value, str | int | float):
        return str(value)[:cap]
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: object) -> dt.datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def booking(data: dict[str, Any]) -> CalcomBooking:
    """A booking Cal.com sent (checked by ``booking_problem`` before), as the facts the database decides on."""
    raw = data.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    event_type = _int(data.get("eventTypeId"))
    if event_type is None and isinstance(data.get("eventType"), dict):
        event_type = _int(data["eventType"].get("id"))
    return CalcomBooking(
        uid=str(data["uid"]),
        booking_id=_int(data.get("id")),
        event_type_id=event_type,
        status=_text(data.get("status"), 40),
        start_at=_time(data.get("start")),
        end_at=_time(data.get("end")),
        metadata_appointment=_text(meta.get(META_APPOINTMENT), META_CAP),
        metadata_phase=_text(meta.get(META_PHASE), META_CAP),
        rescheduled_to_uid=_uid(data.get("rescheduledToUid")),
        rescheduled_from_uid=_uid(data.get("rescheduledFromUid")),
        cancellation_reason=_text(data.get("cancellationReason"), REASON_CAP),
        found=True,
    )


def _uid(value: object) -> str | None:
    return value if isinstance(value, str) and booking_problem({"uid": value, "id": 1}) is None else None


class Reader:
    """The bookings Cal.com holds, read with the client (rate limited, bounded) and within the caps."""

    def __init__(self, client: CalcomClient, opts: Options) -> None:
        self.client = client
        self.opts = opts
        self.found: dict[str, CalcomBooking] = {}
        self.listed = 0
        self.read_count = 0
        self.requests = 0

    async def _send(self, action: str, path: str, params: dict[str, str] | None, expects: Any) -> Exchange:
        for attempt in range(1, TRIES + 1):
            self.requests += 1
            ex = await self.client.send(action, "GET", path, params=params, expects=expects)
            category = ex.verdict.category
            if category == Category.OK or (ex.status == 404 and action == "reconcile_read"):
                return ex
            if category not in RETRYABLE or category in (Category.AUTH, Category.ROUTE_NOT_FOUND) or attempt == TRIES:
                break
            await asyncio.sleep(min(2.0**attempt, 10.0))
        status = f"HTTP {ex.status}" if ex.status is not None else "no answer"
        raise ReconcileError(
            f"Cal.com could not be read: GET {ex.path} gave {status} ({ex.verdict.category}: {ex.verdict.message}); "
            "nothing was recorded, run it again later (check CALCOM_BASE_URL and the key if this persists)"
        )

    def _cap(self) -> None:
        if len(self.found) > self.opts.max_bookings:
            raise ReconcileError(
                f"more than {self.opts.max_bookings} bookings at Cal.com from {iso(self.opts.since)} "
                "(CALSYNC_RECONCILE_MAX_BOOKINGS, flag --max-bookings): narrow the window with --since/--until or "
                "raise the cap; nothing was recorded"
            )

    async def list_event_type(self, event_type_id: int) -> None:
        cursor, until = self.opts.since, self.opts.until
        for _ in range(self.opts.max_pages):
            params = {
                "eventTypeId": str(event_type_id),
                "afterStart": iso(cursor),
                "sortStart": "asc",
                "take": str(DISCOVER_PAGE),
            }
            ex = await self._send("reconcile_list", "/v2/bookings", params, "bookings")
            page = [b for b in ex.body.get("data", []) if isinstance(b, dict)]
            new, last = 0, cursor
            for data in page:
                b = booking(data)
                self.listed += b.uid not in self.found
                new += b.uid not in self.found
                self.found.setdefault(b.uid, b)
                if b.start_at is not None:
                    last = max(last, b.start_at)
            self._cap()
            if len(page) < DISCOVER_PAGE or (until is not None and last >= until):
                return
            if new == 0:
                raise ReconcileError(
                    f"more than {DISCOVER_PAGE} bookings of event type {event_type_id} start at {iso(cursor)}: "
                    "Cal.com pages by start time only and cannot pass them; nothing was recorded"
                )
            cursor = last
        raise ReconcileError(
            f"more than {self.opts.max_pages} pages of bookings of event type {event_type_id} from "
            f"{iso(self.opts.since)} (CALSYNC_RECONCILE_MAX_PAGES, flag --max-pages): narrow the window with "
            "--since/--until or raise the cap; nothing was recorded"
        )

    async def read(self, uid: str) -> None:
        if uid in self.found:
            return
        ex = await self._send("reconcile_read", f"/v2/bookings/{uid}", None, "object")
        self.read_count += 1
        if ex.status == 404:
            self.found[uid] = CalcomBooking(uid, None, None, None, None, None, None, None, None, None, None, False)
        else:
            data = ex.body.get("data")
            occurrence = data[0] if isinstance(data, list) and data else data
            if problem := booking_problem(occurrence):
                raise ReconcileError(f"Cal.com's answer to GET /v2/bookings/{uid} is no booking ({problem})")
            assert isinstance(occurrence, dict)
            self.found[uid] = booking(occurrence)
        self._cap()

    async def successors(self) -> None:
        for _ in range(MAX_SUCCESSORS):
            wanted = {
                b.rescheduled_to_uid
                for b in self.found.values()
                if b.found and b.rescheduled_to_uid and b.rescheduled_to_uid not in self.found
            }
            if not wanted:
                return
            for uid in sorted(wanted):
                assert uid is not None
                await self.read(uid)


async def collect(opts: Options, event_types: list[int], ours: list[str]) -> Reader:
    limiter = RateLimiter(opts.rate_limit, opts.rate_window_s)
    client = CalcomClient(
        opts.base_url,
        opts.api_key,
        limiter,
        timeout_s=opts.request_timeout_s,
        max_connections=1,
        max_rate_wait_s=opts.rate_window_s * 2 + 5,  # a reconciliation waits out a block instead of giving up
        max_response_bytes=opts.max_response_bytes,
    )
    reader = Reader(client, opts)
    try:
        for event_type_id in event_types:
            await reader.list_event_type(event_type_id)
        for uid in ours:
            await reader.read(uid)
        await reader.successors()
    finally:
        await client.aclose()
    return reader


async def cancel_all(opts: Options, run_id: str, findings: list[ReconcileFinding]) -> list[dict[str, Any]]:
    """Cancel at Cal.com each booking calsync made that no live appointment holds: what happened to each."""
    limiter = RateLimiter(opts.rate_limit, opts.rate_window_s)
    client = CalcomClient(
        opts.base_url,
        opts.api_key,
        limiter,
        timeout_s=opts.request_timeout_s,
        max_connections=1,
        max_rate_wait_s=opts.rate_window_s * 2 + 5,
        max_response_bytes=opts.max_response_bytes,
    )
    out = []
    try:
        for f in findings:
            reason = f"calsync reconcile: no live appointment holds this booking (finding #{f.id}, run {run_id})"
            ex = await client.cancel(f.uid, reason, None)
            msg = ex.verdict.message
            done = (
                ex.verdict.category == Category.OK
                or ex.status == 404  # unknown there: nothing left to cancel
                or (ex.status == 400 and ("cancelled already" in msg or "already ended" in msg))
            )
            out.append(
                {"finding_id": f.id, "uid": f.uid, "cancelled": done, "http_status": ex.status, "message": msg or "OK"}
            )
    finally:
        await client.aclose()
    return out


# -- the run ----------------------------------------------------------------------------------------
def run(opts: Options) -> Result:
    result = Result(str(uuid.uuid4()), opts.dry_run, opts.since, opts.until)
    with connect(opts.database_url, autocommit=True) as conn:
        conn.execute("SELECT set_config('calsync.operator', %s, false)", [opts.operator or getpass.getuser()])
        result.event_types = [int(r[0]) for r in conn.execute(query("reconcile_event_types").encode())]  # type: ignore[call-overload]
        window = {"since": opts.since, "until": opts.until}
        ours = [(str(r[0]), bool(r[1])) for r in conn.execute(query("reconcile_ours").encode(), window)]
        result.ours, result.unsettled = len(ours), sum(1 for _, unsettled in ours if unsettled)
        reader = asyncio.run(collect(opts, result.event_types, [uid for uid, unsettled in ours if not unsettled]))
        result.listed, result.read, result.requests = reader.listed, reader.read_count, reader.requests
        steps = ["reconcile", "repair"] if opts.repair else ["reconcile"]
        if not opts.dry_run:  # a run of the runbook: remediation.runs keeps the dashboard before and after
            before = json.dumps(runbook.snapshot(conn), default=str)
            conn.execute(
                query("remediation_run_start").encode(),
                {"run_id": result.run_id, "reason": opts.reason, "steps": steps, "dry_run": False, "before": before},
            )
        rows = conn.execute(
            query("reconcile_record").encode(),
            {
                "run_id": result.run_id,
                "bookings": encode_bookings(list(reader.found.values())),
                "dry_run": opts.dry_run,
                **window,
            },
        ).fetchall()
        result.findings = [decode_finding(str(r[0])) for r in rows]
        if opts.repair and not opts.dry_run:
            result.repair_ran = True
            cur = conn.cursor(row_factory=dict_row)
            result.repaired = [
                dict(r)
                for r in cur.execute(
                    query("reconcile_repair").encode(), {"run_id": result.run_id, "reason": opts.reason}
                )
            ]
            todo = [decode_finding(str(r[0])) for r in conn.execute(query("reconcile_cancellations").encode())]
            for outcome in asyncio.run(cancel_all(opts, result.run_id, todo)):
                recorded = [
                    dict(r)
                    for r in cur.execute(
                        query("reconcile_record_cancellation").encode(),
                        {"run_id": result.run_id, "reason": opts.reason, **outcome},
                    )
                ]
                (result.cancelled if outcome["cancelled"] else result.not_cancelled).append(
                    {**outcome, "changes": recorded}
                )
        if not opts.dry_run:
            conn.execute(
                query("remediation_run_finish").encode(),
                {
                    "run_id": result.run_id,
                    "after": json.dumps(
                        {**runbook.snapshot(conn), "reconcile": result.to_json()["by_kind"]}, default=str
                    ),
                },
            )
    return result


def undo(url: str, run_id: str, reason: str | None = None, operator: str | None = None) -> list[dict[str, Any]]:
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('calsync.operator', %s, false)", [operator or getpass.getuser()])
        with conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            return [
                dict(r) for r in cur.execute(query("reconcile_undo").encode(), {"run_id": run_id, "reason": reason})
            ]


# -- the command line --------------------------------------------------------------------------------
_SHARED = ("base_url", "rate_window_s", "request_timeout_s", "max_response_bytes")
LIMITS = (
    Setting(
        "rate_limit",
        "CALSYNC_RECONCILE_RATE_LIMIT",
        Integer(1),
        "requests per rate window for reconciliation, a share of the key's limit (the worker also follows Cal.com's "
        "rate-limit headers)",
    ),
    Setting("max_pages", "CALSYNC_RECONCILE_MAX_PAGES", Integer(1), "pages of 250 bookings per event type at most"),
    Setting("max_bookings", "CALSYNC_RECONCILE_MAX_BOOKINGS", Integer(1), "bookings read from Cal.com at most"),
)


def parse_since(text: str) -> dt.datetime:
    """An ISO-8601 date or time (UTC unless it says otherwise), or ``now``."""
    if text.strip().lower() == "now":
        return dt.datetime.now(dt.UTC)
    value = dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def add_arguments(p: argparse.ArgumentParser) -> None:
    shared = {s.name: s for s in settings.SETTINGS}
    defaults = Options("", "https://api.cal.com", "", dt.datetime.now(dt.UTC))
    for s in [shared[n] for n in _SHARED] + list(LIMITS):
        p.add_argument(
            s.flag,
            default=None,
            metavar=s.name.upper(),
            help=f"{s.help}: {s.expected} [env {s.env}; default {getattr(defaults, s.name)}]",
        )


def options(args: argparse.Namespace, since: dt.datetime | None, until: dt.datetime | None) -> Options:
    """The settings from flags and environment, each checked, then the key and the database URL (not connected)."""
    from worker.db import resolve_url

    chosen = [s for s in settings.SETTINGS if s.name in _SHARED] + list(LIMITS)
    values = {s.name: v for s in chosen if (v := s.read(getattr(args, s.name, None))) is not None}
    return Options(
        database_url=resolve_url(args.database_url),
        api_key=settings.read_api_key(),
        since=since or dt.datetime.now(dt.UTC),
        until=until,
        dry_run=args.dry_run,
        repair=args.repair,
        reason=args.reason,
        **{"base_url": "https://api.cal.com", **values},
    )


# -- output -----------------------------------------------------------------------------------------
def render(result: Result) -> str:
    lines = []
    if result.findings:
        lines.append(f"{'kind':<17} {'repair':<17} {'appointment':>11}  {'uid':<24} detail")
        for f in result.findings:
            detail = f.detail if len(f.detail) <= 110 else f.detail[:107] + "..."
            appointment = f"#{f.appointment_id}" if f.appointment_id is not None else "-"
            lines.append(f"{f.kind:<17} {f.repair:<17} {appointment:>11}  {f.uid:<24} {detail}")
    for c in result.not_cancelled:
        lines.append(f"not cancelled at Cal.com: {c['uid']} (HTTP {c['http_status']}): {c['message']}")
    kinds = result.to_json()["by_kind"]
    summary = ", ".join(f"{k} {kinds.get(k, 0)}" for k in ("orphan_at_calcom", "orphan_here", "drift"))
    new = sum(1 for f in result.findings if f.is_new)
    person = sum(1 for f in result.findings if f.repair == "person")
    mode = " (dry run: nothing recorded)" if result.dry_run else ""
    line = (
        f"reconcile run {result.run_id}{mode}: {result.listed} bookings listed in {len(result.event_types)} event "
        f"type(s), {result.read} read by uid, {result.ours} of ours checked ({result.unsettled} unsettled, left to "
        f"the worker): {len(result.findings)} finding(s) ({summary}; {new} new, {person} for a person)"
    )
    if result.repair_ran:
        repaired = sum(1 for r in result.repaired if r["table_name"] == "reconcile_findings" and _resolved(r))
        line += (
            f"; repaired {repaired}, cancelled at Cal.com {len(result.cancelled)}"
            f" ({len(result.not_cancelled)} failed); open after: {result.open_after()}"
        )
    lines.append(line)
    return "\n".join(lines)


def exit_code(result: Result) -> int:
    """0: nothing open (after the repair); 1: findings are open (as `migrate --preflight`: found what it looks for)."""
    return Exit.OK if result.open_after() == 0 else Exit.FAILED
