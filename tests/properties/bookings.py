"""Writing appointments the way the app does, and checking each outcome against the rules: one Run per
example keeps the appointments it made; ``insert`` and ``update`` predict what the write must leave (or
which named rule may refuse it, or which known bug it runs into) and check it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from tests.properties import oracle, rules
from tests.properties.conftest import Base
from tests.properties.harness import STATS, Conn, attempt, epoch, known_bug, value
from tests.properties.strategies import Time

SERVICES = ("cut", "perm", "legacy", "ranges", "broken", "fuzzed", None)
STAFF = (None, "lena", "mia", "fabian_a", "fabian_b", "aushilfe")
KEEP = "keep"


@dataclass(frozen=True)
class Insert:
    customer: int
    service: str | None
    staff: str | None
    start: Time
    length: int | None
    status: str
    is_composite: bool | None
    calcom_booking_id: int | None
    calcom_uid: str | None
    sync_origin: str | None


@dataclass(frozen=True)
class Update:
    target: int
    start: Time | str | None  # a new start, a shift ('1 day'), or unchanged
    length: int | str | None  # minutes after the new start, NULL, or KEEP the length
    service: str | None
    staff: str | None
    status: str
    is_composite: bool | str
    version: str  # KEEP (not named), "current" or "stale"


class Run:
    """One example: the salon, the appointments it made, what each write must leave behind."""

    def __init__(self, conn: Conn, base: Base, fuzzed: int, prop: str) -> None:
        self.conn, self.base, self.prop = conn, base, prop
        self.services: dict[str | None, int | None] = {**base.services, "fuzzed": fuzzed, None: None}
        self.customers = list(base.customers.values())
        self.made: list[int] = []
        self.skip: tuple[str, ...] = ()  # rules a service change has left to the bookings of the past

    def staff(self, name: str | None) -> str | None:
        return None if name is None else self.base.staff[name]

    # ------------------------------------------------------------ the two writes

    def insert(self, op: Insert) -> None:
        conn = self.conn
        start = epoch(conn, *op.start.sql())
        if start is None:
            STATS.record(self.prop, "input outside timestamptz")
            return
        ends = None
        if op.length is not None:
            ends = _instant(conn, "%s::timestamptz + make_interval(mins => %s)", [start[1], op.length])
            if ends is None:
                STATS.record(self.prop, "input outside timestamptz")
                return
        service = self.services[op.service]
        composite = rules.composite_of(conn, service)
        new = rules.Appt(
            None, self.customers[op.customer], service, self.staff(op.staff), start[0], start[1],
            ends[0] if ends else None, op.status, composite if composite is not None else bool(op.is_composite),
            1, op.calcom_booking_id, op.calcom_uid, op.sync_origin,
        )  # fmt: skip
        cols = {
            "company_id": self.base.company, "customer_id": new.customer, "service_id": service,
            "staff_id": new.staff, "starts_at": start[1], "ends_at": ends[1] if ends else None, "status": op.status,
            "calcom_booking_id": op.calcom_booking_id, "calcom_v2_booking_uid": op.calcom_uid,
            "sync_origin": op.sync_origin,
        }  # fmt: skip
        if op.is_composite is not None:
            cols["is_composite"] = op.is_composite
        seq = rules.outbox_seq(conn)
        rows, failure = attempt(
            conn,
            sql.SQL("INSERT INTO appointments ({}) VALUES ({}) RETURNING id").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(sql.Placeholder() * len(cols))
            ),
            list(cols.values()),
        )
        bugs = rules.predicted_bugs(conn, new, derives=True, shifts=False)
        out_of_range = rules.phases_leave_time_range(conn, new, derives=True, shifts=False)
        if failure is not None:
            if failure.sqlstate in bugs and failure.stage == "commit":
                known_bug(self.prop, bugs[failure.sqlstate])
                return
            if failure.rule == "23514 appointment_phases_within_time_range":
                assert out_of_range and failure.stage == "commit", f"{failure}\nfor {new}"
            else:
                assert failure.named() and rules.justified(conn, failure, new), f"{failure}\nfor {new}"
            STATS.record(self.prop, f"insert refused: {failure.rule}")
            return
        assert not bugs, f"expected known bug {bugs} did not happen: {new}"
        assert not out_of_range, f"phases past timestamptz's end were not refused: {new}"
        new = replace(new, id=rows[0][0])
        self.made.append(new.id)  # type: ignore[arg-type]
        self.after(None, new, derives=True, seq=seq)
        STATS.record(self.prop, f"insert: {self.kind(new)}")

    def update(self, op: Update) -> None:
        if not self.made:
            return
        conn = self.conn
        old = rules.load(conn, self.made[op.target % len(self.made)])
        sets: dict[str, Any] = {}
        starts = (old.starts, old.starts_text)
        if isinstance(op.start, Time):
            starts = epoch(conn, *op.start.sql())  # type: ignore[assignment]
        elif isinstance(op.start, str):
            starts = _instant(conn, "%s::timestamptz + %s::interval", [old.starts_text, op.start])  # type: ignore[assignment]
        if starts is None:
            STATS.record(self.prop, "input outside timestamptz")
            return
        if op.start is not None:
            sets["starts_at"] = starts[1]
        ends: tuple[Decimal, str] | None = None
        if op.length == KEEP:
            if op.start is not None and old.ends is not None:
                ends = _instant(
                    conn, "%s::timestamptz + (%s::timestamptz - %s::timestamptz)",
                    [starts[1], _text(conn, old.id, "ends_at"), old.starts_text],
                )  # fmt: skip
                if ends is None:
                    STATS.record(self.prop, "input outside timestamptz")
                    return
                sets["ends_at"] = ends[1]
            elif old.ends is not None:
                ends = (old.ends, _text(conn, old.id, "ends_at"))
        elif op.length is not None:
            ends = _instant(conn, "%s::timestamptz + make_interval(mins => %s)", [starts[1], op.length])
            if ends is None:
                STATS.record(self.prop, "input outside timestamptz")
                return
            sets["ends_at"] = ends[1]
        else:
            sets["ends_at"] = None
        service, staff, status = old.service, old.staff, old.status
        if op.service != KEEP:
            service = sets["service_id"] = self.services[op.service]
        if op.staff != KEEP:
            staff = sets["staff_id"] = self.staff(op.staff)
        if op.status != KEEP:
            status = sets["status"] = op.status
        version = None
        if op.version != KEEP:
            version = sets["version"] = old.version if op.version == "current" else old.version - 1
        service_changed = service != old.service
        composite = old.is_composite
        if op.is_composite != KEEP:
            composite = sets["is_composite"] = bool(op.is_composite)
        if service_changed and service is not None:
            composite = bool(rules.composite_of(conn, service))  # the trigger takes the service's flag
        if not sets:
            return
        new = replace(
            old, service=service, staff=staff, status=status, starts=starts[0], starts_text=starts[1],
            ends=ends[0] if ends else None, is_composite=composite,
        )  # fmt: skip
        # the rule appointments_composite_has_phases looks again when one of these is named
        derives = bool({"service_id", "starts_at", "is_composite", "status"} & sets.keys()) and (
            service_changed or old.phases == 0
        )
        shifts = "starts_at" in sets and not service_changed and old.phases > 0 and starts[0] != old.starts
        seq = rules.outbox_seq(conn)
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in sets)
        rows, failure = attempt(
            conn,
            sql.SQL("UPDATE appointments SET {} WHERE id = %s RETURNING id").format(assignments),
            [*sets.values(), old.id],
        )
        bugs = rules.predicted_bugs(conn, new, derives=derives, shifts=shifts)
        out_of_range = rules.phases_leave_time_range(conn, new, derives=derives, shifts=shifts)
        if failure is not None:
            if failure.sqlstate in bugs:
                known_bug(self.prop, bugs[failure.sqlstate])
                return
            if failure.rule == "23514 appointment_phases_within_time_range":
                assert out_of_range, f"{failure}\nfor {old}\n -> {new} (SET {sets})"
                STATS.record(self.prop, f"update refused: {failure.rule}")
                return
            named_composite = bool({"is_composite", "service_id"} & sets.keys()) and not service_changed
            ok = failure.named() and rules.justified(
                conn, failure, new, version=version, old=old, checks_composite=named_composite
            )
            assert ok, f"{failure}\nfor {old}\n -> {new} (SET {sets})"
            STATS.record(self.prop, f"update refused: {failure.rule}")
            return
        assert rows, f"UPDATE of appointment {old.id} matched nothing"
        assert not bugs, f"expected known bug {bugs} did not happen: {old} -> {new}"
        assert not out_of_range, f"phases past timestamptz's end were not refused: {old} -> {new}"
        self.after(old, new, derives=derives, seq=seq)
        STATS.record(self.prop, f"update: {self.kind(new)}")

    # ------------------------------------------------------------ what a successful write leaves

    def kind(self, a: rules.Appt) -> str:
        """How the write ended, for the summary: simple/composite, live or not, phases or flagged."""
        assert a.id is not None
        got = rules.load(self.conn, a.id)
        life = "live" if got.live else "not live"
        if not got.is_composite:
            return f"simple {life}"
        return f"composite {life}, " + ("phases" if got.phases else "flagged" if got.flagged else "no phases")

    def after(self, old: rules.Appt | None, new: rules.Appt, *, derives: bool, seq: int) -> None:
        conn = self.conn
        assert new.id is not None
        got = rules.load(conn, new.id)
        assert rules.same_except_bookkeeping(got, new) == got, f"stored {got}, written {new}"
        flagged_now = derives and new.live and new.is_composite and got.phases == 0
        if flagged_now:
            assert rules.derivation(conn, new.service).problem is not None, f"no phases derived: {got}"
        # version: 1 on insert, + 1 per UPDATE, + 1 when the commit flags the appointment (its own UPDATE)
        expected_version = (1 if old is None else old.version + 1) + (1 if flagged_now else 0)
        assert got.version == expected_version, f"version {got.version}, expected {expected_version}: {got}"
        if not got.flagged:
            sync = conn.execute(
                "SELECT calcom_sync_status, requires_manual_review, sync_error_code FROM appointments WHERE id = %s",
                [new.id],
            ).fetchone()
            assert sync == ("pending", False, None), f"sync columns changed: {sync} ({got})"
        if got.is_composite and got.phases:
            rules.check_phases(conn, got)
        moved = old is not None and (old.starts, old.staff, old.service) != (new.starts, new.staff, new.service)
        own, by_phases = rules.outbox_since(conn, new.id, seq)
        marked = new.sync_origin if old is None or old.sync_origin != new.sync_origin else None
        expected = oracle.outbox_event(old.status if old else None, new.status, moved, marked)
        assert own == ([expected] if expected else []), f"outbox {own}, expected {expected}: {old} -> {new}"
        # phases written with the appointment enqueue nothing of their own (every write here is under a savepoint)
        assert not by_phases, f"phases enqueued {by_phases} of their own: {old} -> {new}"
        broken = rules.broken_rules(conn, skip=self.skip)
        assert not broken, f"after {old} -> {new}: {json.dumps(broken, default=str)}"


def _instant(conn: Conn, expr: str, params: list[Any]) -> tuple[Decimal, str] | None:
    """A timestamptz the client computes (None when it falls outside the type's range: not our write)."""
    try:
        with conn.transaction():
            text = value(conn, sql.SQL("SELECT ({})::text").format(sql.SQL(expr)), params)
    except psycopg.errors.DatetimeFieldOverflow:
        return None
    return epoch(conn, text, None)


def _text(conn: Conn, appointment_id: int | None, column: str) -> str:
    query = sql.SQL("SELECT {}::text FROM appointments WHERE id = %s").format(sql.Identifier(column))
    return str(value(conn, query, [appointment_id]))
