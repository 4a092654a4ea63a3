"""What the simulator knows: event types, users (whose API keys they are), bookings and their attendees.

`EventType.from_json` reads the admin JSON shape (POST /_sim/event-types), `User.from_json` the users' (POST
/_sim/users). An event type without `teamId` belongs to its host (`hostUserId`); with one, to that team. Its
booking fields say what Cal.com's booking form asks: e-mail required (the default) or optional (then the phone
must be required, as Cal.com insists), and the phone field hidden, shown ("optional", the default here) or
required. Cal.com's own default for a new event type is a hidden phone field: `"phoneField": "hidden"`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACTIVE_STATUSES = frozenset({"accepted", "pending"})
PHONE_FIELDS = ("hidden", "optional", "required")
FREQUENCIES = ("yearly", "monthly", "weekly")  # Cal.com's Frequency 0, 1, 2; the v2 API books no others
TEAM_ROLES = ("MEMBER", "ADMIN", "OWNER")
_UID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_uid() -> str:
    """A 22-character short uuid like Cal.com's booking uids."""
    n = uuid.uuid4().int
    chars = []
    for _ in range(22):
        n, r = divmod(n, 57)
        chars.append(_UID_ALPHABET[r])
    return "".join(chars)


def iso_ms(ts_ms: int) -> str:
    """Epoch milliseconds as JavaScript's `Date.toISOString()` writes them."""
    dt = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


class _Reader:
    """Typed reads from an admin JSON object, with readable ValueErrors."""

    def __init__(self, kind: str, d: Any, known: set[str]) -> None:
        if not isinstance(d, dict):
            raise ValueError(f"a {kind} must be an object")
        if unknown := sorted(set(d) - known):
            raise ValueError(f"unknown {kind} fields: {', '.join(unknown)}")
        self.kind, self.d = kind, d

    def integer(self, name: str, minimum: int, default: int | None = None) -> int:
        v = self.d.get(name, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise ValueError(f"{self.kind} {name} must be an integer >= {minimum}")
        return v

    def text(self, name: str, default: str) -> str:
        v = self.d.get(name, default)
        if not isinstance(v, str) or not v:
            raise ValueError(f"{self.kind} {name} must be a non-empty string")
        return v

    def flag(self, name: str, default: bool) -> bool:
        v = self.d.get(name, default)
        if not isinstance(v, bool):
            raise ValueError(f"{self.kind} {name} must be true or false")
        return v

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        v = self.d.get(name, default)
        if v not in options:
            raise ValueError(f"{self.kind} {name} must be one of {', '.join(options)}")
        return str(v)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """The event type's recurring event (v2 output `recurrence`: interval, occurrences, frequency)."""

    frequency: str
    interval: int
    occurrences: int

    def to_json(self) -> dict[str, Any]:
        return {"frequency": self.frequency, "interval": self.interval, "occurrences": self.occurrences}


@dataclass(frozen=True, slots=True)
class EventType:
    id: int
    length_in_minutes: int
    host_user_id: int
    slug: str
    title: str
    host_name: str
    host_email: str
    host_username: str
    host_time_zone: str = "UTC"
    length_options: tuple[int, ...] = ()  # metadata.multipleDuration; non-empty: several possible lengths
    team_id: int | None = None
    email_required: bool = True
    phone_field: str = "optional"  # hidden | optional | required
    recurrence: Recurrence | None = None

    @classmethod
    def from_json(cls, d: Any) -> EventType:
        """From the admin JSON shape; ValueError with a readable message when malformed."""
        known = {"id", "lengthInMinutes", "hostUserId", "slug", "title", "hostName", "hostEmail", "hostUsername"}
        known |= {"hostTimeZone", "lengthInMinutesOptions", "teamId", "emailRequired", "phoneField", "recurrence"}
        r = _Reader("event type", d, known)
        et_id, length, host = r.integer("id", 1), r.integer("lengthInMinutes", 1), r.integer("hostUserId", 1)
        options = d.get("lengthInMinutesOptions") or []
        if not isinstance(options, list) or not all(
            isinstance(o, int) and not isinstance(o, bool) and o >= 1 for o in options
        ):
            raise ValueError("event type lengthInMinutesOptions must be a list of positive integers")
        if options and length not in options:
            raise ValueError("event type lengthInMinutesOptions must include lengthInMinutes")
        email_required = r.flag("emailRequired", True)
        phone = r.choice("phoneField", PHONE_FIELDS, "optional")
        if not email_required and phone != "required":
            # Cal.com's ensureEmailOrPhoneNumberIsPresent: one of the two must be required and shown
            raise ValueError("an event type whose e-mail is optional must have phoneField required")
        team = d.get("teamId")
        if team is not None:
            team = r.integer("teamId", 1)
        return cls(
            id=et_id,
            length_in_minutes=length,
            host_user_id=host,
            slug=r.text("slug", f"event-type-{et_id}"),
            title=r.text("title", f"{length} min meeting"),
            host_name=r.text("hostName", f"Host {host}"),
            host_email=r.text("hostEmail", f"host{host}@example.com"),
            host_username=r.text("hostUsername", f"host{host}"),
            host_time_zone=r.text("hostTimeZone", "UTC"),
            length_options=tuple(options),
            team_id=team,
            email_required=email_required,
            phone_field=phone,
            recurrence=_recurrence(d.get("recurrence")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lengthInMinutes": self.length_in_minutes,
            "hostUserId": self.host_user_id,
            "slug": self.slug,
            "title": self.title,
            "hostName": self.host_name,
            "hostEmail": self.host_email,
            "hostUsername": self.host_username,
            "hostTimeZone": self.host_time_zone,
            "lengthInMinutesOptions": list(self.length_options),
            "teamId": self.team_id,
            "emailRequired": self.email_required,
            "phoneField": self.phone_field,
            "recurrence": self.recurrence.to_json() if self.recurrence else None,
        }


def _recurrence(value: Any) -> Recurrence | None:
    if value is None:
        return None
    r = _Reader("event type recurrence", value, {"frequency", "interval", "occurrences"})
    return Recurrence(
        r.choice("frequency", FREQUENCIES, "weekly"), r.integer("interval", 1, 1), r.integer("occurrences", 1)
    )


@dataclass(frozen=True, slots=True)
class User:
    """A Cal.com user whose API keys the simulator accepts. `account` is the built-in user of the keys in the
    config (`api_keys`): it hosts and administers everything, as the simulator's single account always did."""

    id: int
    username: str
    email: str
    name: str
    time_zone: str = "UTC"
    api_keys: tuple[str, ...] = ()
    teams: tuple[tuple[int, str], ...] = ()  # (team id, MEMBER | ADMIN | OWNER)
    org_admin: bool = False  # ADMIN/OWNER of the organization: administers every team and member
    account: bool = False

    @classmethod
    def from_json(cls, d: Any) -> User:
        known = {"id", "username", "email", "name", "timeZone", "apiKeys", "teams", "orgAdmin"}
        r = _Reader("user", d, known)
        user_id = r.integer("id", 1)
        keys = d.get("apiKeys") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) and k.startswith("cal_") for k in keys):
            raise ValueError("user apiKeys must be a list of strings starting with cal_")
        teams = d.get("teams") or {}
        if not isinstance(teams, dict) or not all(str(t).isdigit() and role in TEAM_ROLES for t, role in teams.items()):
            raise ValueError(f"user teams must map team ids to one of {', '.join(TEAM_ROLES)}")
        return cls(
            id=user_id,
            username=r.text("username", f"user{user_id}"),
            email=r.text("email", f"user{user_id}@example.com"),
            name=r.text("name", f"User {user_id}"),
            time_zone=r.text("timeZone", "UTC"),
            api_keys=tuple(keys),
            teams=tuple(sorted((int(t), str(role)) for t, role in teams.items())),
            org_admin=r.flag("orgAdmin", False),
        )

    def to_json(self) -> dict[str, Any]:
        """As GET /_sim/users shows it: the number of keys, never the keys."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "name": self.name,
            "timeZone": self.time_zone,
            "apiKeyCount": len(self.api_keys),
            "teams": {str(t): role for t, role in self.teams},
            "orgAdmin": self.org_admin,
        }

    def role_in(self, team_id: int) -> str | None:
        if self.account or self.org_admin:
            return "OWNER"
        return dict(self.teams).get(team_id)

    def hosts(self, et: EventType) -> bool:
        return self.account or et.host_user_id == self.id

    def administers(self, et: EventType) -> bool:
        """Owner or host of the event type, or ADMIN/OWNER of its team (what GET /v2/event-types/{id} allows)."""
        if self.hosts(et) or self.org_admin:
            return True
        return et.team_id is not None and self.role_in(et.team_id) in ("ADMIN", "OWNER")


ACCOUNT_USER = User(id=1, username="calsync", email="owner@example.com", name="Calsync Owner", account=True)


@dataclass(slots=True)
class Attendee:
    name: str
    email: str
    time_zone: str
    language: str = "en"
    phone_number: str | None = None
    absent: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "email": self.email,
            "displayEmail": self.email,
            "timeZone": self.time_zone,
            "language": self.language,
            "absent": self.absent,
        }
        if self.phone_number:
            out["phoneNumber"] = self.phone_number
        return out


@dataclass(slots=True)
class Booking:
    id: int
    uid: str
    event_type: EventType  # a snapshot: re-registering the event type does not change old bookings
    start_ms: int
    end_ms: int
    attendee: Attendee
    title: str
    created_ms: int
    status: str = "accepted"
    description: str = ""
    guests: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    responses: dict[str, Any] = field(default_factory=dict)
    location: str = "integrations:daily"
    meeting_url: str | None = None
    updated_ms: int | None = None
    cancellation_reason: str | None = None
    cancelled_by_email: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by_email: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled_to_uid: str | None = None
    recurring_uid: str | None = None  # Cal.com's recurringEventId, shown as recurringBookingUid
    ics_uid: str | None = None  # a successor keeps its predecessor's iCalUID
    # the simulator's own record, not Cal.com's (shown by GET /_sim/bookings only): which key's request made it
    # (the throttler's tracker: a hash, never the key) and when that request arrived
    made_by: str | None = None
    requested_ms: int | None = None

    @property
    def host_user_id(self) -> int:
        return self.event_type.host_user_id

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def seen_by(self, user: User) -> bool:
        """GET /v2/bookings' scope: the user hosts or attends it, or administers its event type's team."""
        et = self.event_type
        if user.account or user.org_admin or et.host_user_id == user.id:
            return True
        if self.attendee.email.lower() == user.email.lower():
            return True
        return et.team_id is not None and user.role_in(et.team_id) in ("ADMIN", "OWNER")

    def to_api(self) -> dict[str, Any]:
        """The booking as GET /v2/bookings/{uid} (2024-08-13) shows it; unset optional fields are left out."""
        et = self.event_type
        out: dict[str, Any] = {
            "id": self.id,
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "hosts": [
                {
                    "id": et.host_user_id,
                    "name": et.host_name,
                    "email": et.host_email,
                    "displayEmail": et.host_email,
                    "username": et.host_username,
                    "timeZone": et.host_time_zone,
                }
            ],
            "status": self.status,
        }
        for key, value in (
            ("cancellationReason", self.cancellation_reason),
            ("cancelledByEmail", self.cancelled_by_email),
            ("reschedulingReason", self.rescheduling_reason),
            ("rescheduledByEmail", self.rescheduled_by_email),
            ("rescheduledFromUid", self.rescheduled_from_uid),
            ("rescheduledToUid", self.rescheduled_to_uid),
            ("recurringBookingUid", self.recurring_uid),
        ):
            if value is not None:
                out[key] = value
        out.update(
            {
                "start": iso_ms(self.start_ms),
                "end": iso_ms(self.end_ms),
                "duration": (self.end_ms - self.start_ms) // 60_000,
                "eventTypeId": et.id,
                "eventType": {"id": et.id, "slug": et.slug},
                "meetingUrl": self.meeting_url,
                "location": self.location,
                "absentHost": False,
                "createdAt": iso_ms(self.created_ms),
                "updatedAt": iso_ms(self.updated_ms) if self.updated_ms is not None else None,
                "metadata": dict(self.metadata),
                "rating": None,
                "icsUid": self.ics_uid or f"{self.uid}@Cal.com",
                "attendees": [self.attendee.to_api()],
                "guests": list(self.guests),
                "bookingFieldsResponses": dict(self.responses),
            }
        )
        return out
