"""GET /v2/bookings: the query (GetBookingsInput_2024_08_13 through the global ValidationPipe), its run over the
store within the caller's scope, and the `pagination` object.

Scope (calcom-api.md §8): a key sees the bookings its user hosts or attends, or administers as team/org
ADMIN/OWNER; the built-in account user of the configured keys sees every booking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.devtools.simulator.errors import FieldError, global_pipe_error, parse_iso_ms
from worker.devtools.simulator.model import Booking, User
from worker.devtools.simulator.state import Store

LIST_STATUSES = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
_DATE_FILTERS = ("afterStart", "beforeEnd", "afterCreatedAt", "beforeCreatedAt", "afterUpdatedAt", "beforeUpdatedAt")
_SORTS = {"sortStart": "start_ms", "sortEnd": "end_ms", "sortCreated": "created_ms", "sortUpdatedAt": "updated_ms"}


@dataclass
class ListQuery:
    statuses: tuple[str, ...] = ()
    attendee_email: str | None = None
    attendee_name: str | None = None
    booking_uid: str | None = None
    event_type_ids: tuple[int, ...] = ()
    dates: dict[str, int] = field(default_factory=dict)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (Booking attribute, descending)
    take: int = 100
    skip: int = 0


def parse_list_query(q: Mapping[str, str], path: str) -> ListQuery:
    """GetBookingsInput_2024_08_13 through the global ValidationPipe; unknown parameters are dropped."""
    errs: list[FieldError] = []
    out = ListQuery()

    def bad(prop: str, constraint: str, message: str) -> None:
        errs.append(FieldError(prop, {constraint: message}, value=q.get(prop)))

    if status := q.get("status"):
        out.statuses = tuple(s.strip() for s in status.split(",") if s.strip())
        if any(s not in LIST_STATUSES for s in out.statuses):
            bad(
                "status",
                "isEnum",
                f"each value in status must be one of the following values: {', '.join(LIST_STATUSES)}",
            )
    if email := q.get("attendeeEmail"):
        out.attendee_email = email.replace(" ", "+")
    out.attendee_name = q.get("attendeeName") or None
    out.booking_uid = q.get("bookingUid") or None
    for prop in ("eventTypeId", "eventTypeIds"):
        values = [v.strip() for v in (q.get(prop) or "").split(",") if v.strip()]
        if not all(v.lstrip("-").isdigit() for v in values):
            each = "each value in " if prop == "eventTypeIds" else ""
            bad(prop, "isInt", f"{each}{prop} must be an integer number")
        else:
            out.event_type_ids += tuple(int(v) for v in values)
    for prop in _DATE_FILTERS:
        if (text := q.get(prop)) is not None:
            if (ms := parse_iso_ms(text)) is None:
                bad(prop, "isDateString", f"{prop} must be a valid ISO 8601 date string")
            else:
                out.dates[prop] = ms
    for prop, attr in _SORTS.items():
        if (order := q.get(prop)) is not None:
            if order not in ("asc", "desc"):
                bad(prop, "isEnum", f"{prop} must be one of the following values: asc, desc")
            out.sorts.append((attr, order == "desc"))
    for prop, low, high in (("take", 1, 250), ("skip", 0, None)):
        if (text := q.get(prop)) is not None:
            if not text.lstrip("-").isdigit():
                bad(prop, "isInt", f"{prop} must be an integer number")
            elif int(text) < low:
                bad(prop, "min", f"{prop} must not be less than {low}")
            elif high is not None and int(text) > high:
                bad(prop, "max", f"{prop} must not be greater than {high}")
            else:
                setattr(out, prop, int(text))
    if errs:
        raise global_pipe_error(errs, path)
    return out


def _status_match(b: Booking, statuses: tuple[str, ...], now: int) -> bool:
    for s in statuses:
        if s == "upcoming" and b.active and b.end_ms >= now:
            return True
        if s == "past" and b.active and b.end_ms <= now:
            return True
        if s == "cancelled" and not b.active:
            return True
        if s == "unconfirmed" and b.status == "pending" and b.end_ms >= now:
            return True
        if s == "recurring" and b.recurring_uid is not None and b.active and b.end_ms >= now:
            return True
    return False


def run_list_query(store: Store, q: ListQuery, now: int, caller: User) -> tuple[list[Booking], int]:
    """The page of bookings `caller` may see (after filters, sorting, skip/take) and the number of matches."""
    pool = store.by_attendee_email(q.attendee_email) if q.attendee_email else store.bookings.values()
    d = q.dates
    found = [
        b
        for b in pool
        if b.seen_by(caller)
        and (not q.statuses or _status_match(b, q.statuses, now))
        and (q.attendee_name is None or b.attendee.name == q.attendee_name)
        and (q.booking_uid is None or b.uid == q.booking_uid)
        and (not q.event_type_ids or b.event_type.id in q.event_type_ids)
        and b.start_ms >= d.get("afterStart", b.start_ms)
        and b.end_ms <= d.get("beforeEnd", b.end_ms)
        and b.created_ms >= d.get("afterCreatedAt", b.created_ms)
        and b.created_ms <= d.get("beforeCreatedAt", b.created_ms)
        and (b.updated_ms or b.created_ms) >= d.get("afterUpdatedAt", b.updated_ms or b.created_ms)
        and (b.updated_ms or b.created_ms) <= d.get("beforeUpdatedAt", b.updated_ms or b.created_ms)
    ]
    found.sort(key=lambda b: (b.start_ms, b.id))
    for attr, desc in reversed(q.sorts):
        found.sort(key=lambda b: getattr(b, attr) or b.created_ms, reverse=desc)
    return found[q.skip : q.skip + q.take], len(found)


def pagination(skip: int, take: int, total: int) -> dict[str, Any]:
    """apps/api/v2/src/lib/pagination/pagination.ts."""
    safe_skip = max(0, min(skip, total))
    total_pages = -(-total // take) if take else 0
    current = 0 if total_pages == 0 else max(1, min(safe_skip // take + 1, total_pages))
    return {
        "itemsReturned": max(0, min(total - safe_skip, take)),
        "totalItems": total,
        "itemsPerPage": take,
        "remainingItems": max(0, min(total - (safe_skip + take), total)),
        "currentPage": current,
        "totalPages": total_pages,
        "hasNextPage": safe_skip + take < total,
        "hasPreviousPage": safe_skip > 0,
    }
