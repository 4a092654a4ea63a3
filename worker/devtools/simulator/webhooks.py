"""Webhook subscriptions and the bodies Cal.com sends them (no aiohttp here: `config` imports this module).

Read in calcom/cal.com (paths in that repository; details and sources in /work/notes/webhooks.md):

- `packages/features/webhooks/lib/sendPayload.ts`: body `{"triggerEvent", "createdAt", "payload"}` (JSON.stringify,
  no spaces), or the subscription's `payloadTemplate` rendered by Handlebars; `description = description ||
  additionalNotes`; `utcOffset` (minutes) added to the organizer and each attendee; `X-Cal-Signature-256` = hex
  HMAC-SHA256 of the body with the secret, or "no-secret-provided".
- `handleNewBooking` (create and reschedule): `{...evt, ...eventTypeInfo, bookingId, rescheduleId, rescheduleUid,
  rescheduleStartTime, rescheduleEndTime, metadata: {...videoCallUrl, ...reqBody.metadata}, eventTypeId, status:
  "ACCEPTED", rescheduledBy, location}`; `evt.uid` is the booking just created (on a reschedule the new one),
  `rescheduleUid` the old one; times `dayjs(...).utc().format()` ("2026-09-14T10:00:00Z", no milliseconds).
- `handleCancelBooking.ts`: `{...evt, ...eventTypeInfo, status: "CANCELLED", cancelledBy}` with
  `cancellationReason` in evt and **no metadata**; times `dayjs(...).format()` (not in UTC mode: "+00:00" on a
  server running in UTC); one webhook for the booking asked for, even when later occurrences go with it.
- JSON.stringify drops `undefined`: fields Cal.com leaves undefined are left out here, `null` stays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from worker.devtools.simulator.model import Booking

DEFAULT_VERSION = "2021-10-20"  # Webhook.version's default, sent as X-Cal-Webhook-Version
NO_SECRET = "no-secret-provided"
BOOKING_TRIGGERS = ("BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED", "BOOKING_REQUESTED")
# The Prisma enum WebhookTriggerEvents (calcom-api.md §4) plus the v2 DTO's newer names: all accepted, only the
# booking triggers above are ever sent by the simulator.
TRIGGERS = frozenset(
    {
        *BOOKING_TRIGGERS,
        "BOOKING_PAYMENT_INITIATED",
        "BOOKING_PAID",
        "BOOKING_REJECTED",
        "BOOKING_NO_SHOW_UPDATED",
        "FORM_SUBMITTED",
        "MEETING_ENDED",
        "MEETING_STARTED",
        "RECORDING_READY",
        "INSTANT_MEETING",
        "RECORDING_TRANSCRIPTION_GENERATED",
        "OOO_CREATED",
        "AFTER_HOSTS_CAL_VIDEO_NO_SHOW",
        "AFTER_GUESTS_CAL_VIDEO_NO_SHOW",
        "FORM_SUBMITTED_NO_EVENT",
        "BOOKING_CONFIRMED",
        "BOOKING_COMPLETED",
        "BOOKING_NO_SHOW",
        "BOOKING_REOPENED",
    }
)
# Default booking fields in the event type's order, with their defaultLabel (getCalEventResponses uses
# `field.label || field.defaultLabel`).
_FIELD_LABELS = (
    ("name", "your_name"),
    ("email", "email_address"),
    ("attendeePhoneNumber", "phone_number"),
    ("location", "location"),
    ("title", "what_is_this_meeting_about"),
    ("notes", "additional_notes"),
    ("guests", "additional_guests"),
    ("rescheduleReason", "reason_for_reschedule"),
)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One webhook: the v2 input (`apps/api/v2/src/modules/webhooks/inputs/webhook.input.ts`: subscriberUrl,
    triggers, active, payloadTemplate?, secret?) plus the simulator's `id` and the stored `version`."""

    id: str
    subscriber_url: str
    triggers: tuple[str, ...]
    active: bool = True
    secret: str | None = None
    payload_template: str | None = None
    version: str = DEFAULT_VERSION

    @classmethod
    def from_json(cls, d: Any, default_id: str) -> Subscription:
        if not isinstance(d, dict):
            raise ValueError("a webhook must be an object")
        known = {"id", "subscriberUrl", "triggers", "active", "secret", "payloadTemplate", "version"}
        if unknown := sorted(set(d) - known):
            raise ValueError(f"unknown webhook fields: {', '.join(unknown)}")
        url, triggers, active = d.get("subscriberUrl"), d.get("triggers"), d.get("active", True)
        if not isinstance(url, str) or not re.match(r"https?://", url):
            raise ValueError("webhook subscriberUrl must be an http(s) URL")
        if not isinstance(triggers, list) or not all(t in TRIGGERS for t in triggers):
            raise ValueError(f"webhook triggers must be a list of {', '.join(sorted(TRIGGERS))}")
        if not isinstance(active, bool):
            raise ValueError("webhook active must be a boolean value")
        for name in ("secret", "payloadTemplate", "id", "version"):
            if d.get(name) is not None and not isinstance(d[name], str):
                raise ValueError(f"webhook {name} must be a string")
        return cls(
            id=d.get("id") or default_id,
            subscriber_url=url,
            triggers=tuple(triggers),
            active=active,
            secret=d.get("secret") or None,
            payload_template=d.get("payloadTemplate") or None,
            version=d.get("version") or DEFAULT_VERSION,
        )

    def to_json(self) -> dict[str, Any]:
        """As GET /_sim/webhooks shows it: whether there is a secret, never the secret."""
        return {
            "id": self.id,
            "subscriberUrl": self.subscriber_url,
            "triggers": list(self.triggers),
            "active": self.active,
            "hasSecret": self.secret is not None,
            "payloadTemplate": self.payload_template,
            "version": self.version,
        }

    def to_input(self) -> dict[str, Any]:
        """The POST /_sim/webhooks body that registers this subscription again (with its secret)."""
        out = self.to_json()
        del out["hasSecret"]
        return {**out, "secret": self.secret}

    def wants(self, trigger: str) -> bool:
        return self.active and trigger in self.triggers


def signature(secret: str | None, body: bytes) -> str:
    """createWebhookSignature: lowercase hex HMAC-SHA256 of the raw body, or the no-secret literal."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() if secret else NO_SECRET


def js_iso(ts_ms: int) -> str:
    """`new Date(ms).toISOString()`."""
    dt = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def _dayjs_utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dayjs_local(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _utc_offset(zone: str, ts_ms: int) -> int:
    try:
        offset = datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(zone)).utcoffset()
    except (KeyError, ValueError):
        return 0
    return int(offset.total_seconds() // 60) if offset else 0


def _responses(b: Booking) -> dict[str, Any]:
    """getCalEventResponses: every booking field `{label, value, isHidden}`; an undefined value is left out."""
    et, out = b.event_type, {}
    for name, label in _FIELD_LABELS:
        entry: dict[str, Any] = {"label": label}
        if name in b.responses:
            entry["value"] = b.responses[name]
        hidden = (name == "attendeePhoneNumber" and et.phone_field == "hidden") or name == "location"
        entry["isHidden"] = hidden
        out[name] = entry
    for name, value in b.responses.items():  # fields of the event type's own (none are modelled): label = name
        out.setdefault(name, {"label": name, "value": value, "isHidden": False})
    return out


def booking_payload(trigger: str, b: Booking, previous: Booking | None = None) -> dict[str, Any]:
    """The `payload` Cal.com sends for `trigger` about booking `b` (`previous`: the booking a reschedule moved)."""
    et, a = b.event_type, b.attendee
    cancel = trigger == "BOOKING_CANCELLED"
    fmt = _dayjs_local if cancel else _dayjs_utc
    minutes = (b.end_ms - b.start_ms) // 60_000
    sequence = 1 if previous is not None or cancel else 0  # iCalSequence + 1 (the simulator keeps no history)
    p: dict[str, Any] = {
        "bookerUrl": "https://cal.com",
        "type": et.slug,
        "title": b.title,
        "description": b.description,  # eventType.description (none here) || additionalNotes
        "additionalNotes": b.description,
        "customInputs": {},
        "startTime": fmt(b.start_ms),
        "endTime": fmt(b.end_ms),
        "organizer": {
            "id": et.host_user_id,
            "name": et.host_name,
            "email": et.host_email,
            "username": et.host_username,
            "timeZone": et.host_time_zone,
            "timeFormat": "h:mma",
            "language": {"locale": "en"},
            "utcOffset": _utc_offset(et.host_time_zone, b.start_ms),
        },
        "responses": _responses(b),
        "userFieldsResponses": {},
        "attendees": [
            {
                "name": a.name,
                "email": a.email,
                "timeZone": a.time_zone,
                "phoneNumber": a.phone_number,
                "language": {"locale": a.language},
                "utcOffset": _utc_offset(a.time_zone, b.start_ms),
            }
        ],
        "uid": b.uid,
        "bookingId": b.id,
        "location": b.location,
        "eventTypeId": et.id,
        "iCalUID": b.ics_uid or f"{b.uid}@Cal.com",
        "iCalSequence": sequence,
        "eventTitle": et.title,
        "eventDescription": None,
        "requiresConfirmation": None,
        "price": 0,
        "currency": "usd",
        "length": minutes,
    }
    if cancel:
        p["cancellationReason"] = b.cancellation_reason
        p["status"] = "CANCELLED"
        if b.cancelled_by_email is not None:
            p["cancelledBy"] = b.cancelled_by_email
        return p
    metadata: dict[str, Any] = {}
    if b.meeting_url:
        metadata["videoCallUrl"] = b.meeting_url
        p["location"] = b.meeting_url  # webhookLocation = metadata.videoCallUrl || evt.location
    metadata.update(b.metadata)
    if previous is not None:
        p["rescheduleId"] = previous.id
        p["rescheduleUid"] = previous.uid
        p["rescheduleStartTime"] = _dayjs_utc(previous.start_ms)
        p["rescheduleEndTime"] = _dayjs_utc(previous.end_ms)
    p["metadata"] = metadata
    p["status"] = "ACCEPTED"
    if previous is not None and b.rescheduled_by_email is not None:
        p["rescheduledBy"] = b.rescheduled_by_email
    return p


def render_body(sub: Subscription, trigger: str, created_at: str, payload: dict[str, Any]) -> tuple[bytes, str]:
    """(body, Content-Type) as sendPayload builds them."""
    if sub.payload_template is None:
        body = {"triggerEvent": trigger, "createdAt": created_at, "payload": payload}
        return _js_json(body).encode(), "application/json"
    is_json = _json_parse(sub.payload_template) is not False
    compiled = render_template(sub.payload_template, {**payload, "triggerEvent": trigger, "createdAt": created_at})
    if is_json:  # JSON.stringify(jsonParse(compiled)): a template that no longer parses sends `false`
        return _js_json(_json_parse(compiled)).encode(), "application/json"
    return compiled.encode(), "application/x-www-form-urlencoded"


def _js_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_parse(text: str) -> Any:
    """sendPayload's jsonParse: the parsed value, or false."""
    try:
        return json.loads(text)
    except ValueError:
        return False


_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
_MUSTACHE = re.compile(r"\{\{\{\s*([\w.@-]+)\s*\}\}\}|\{\{\s*([\w.@-]+)\s*\}\}")


def render_template(template: str, data: dict[str, Any]) -> str:
    """The part of Handlebars payload templates use: `{{a.b.0}}` (HTML-escaped) and `{{{a}}}` (raw), then
    sendPayload's `.replace(/&quot;/g, '"')`. Missing values render as ""; objects as "[object Object]"."""

    def value(path: str) -> str:
        cur: Any = data
        for part in path.split("."):
            if isinstance(cur, dict):
                cur = cur.get(part)
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return ""
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        if isinstance(cur, dict):
            return "[object Object]"
        if isinstance(cur, list):
            return ",".join("" if v is None else str(v) for v in cur)
        return str(cur)

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return value(m.group(1))
        return "".join(_ESCAPES.get(c, c) for c in value(m.group(2)))

    return _MUSTACHE.sub(sub, template).replace("&quot;", '"')
