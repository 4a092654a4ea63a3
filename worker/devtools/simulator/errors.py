"""Error bodies as Cal.com API v2 sends them (calcom-api.md §2), raised as `ApiError` by the handlers.

Two shapes reach a client:
- wrapped (Nest `HttpException` filter): `{"status":"error","timestamp","path","error":{"code","message","details"}}`;
  variants: Zod errors (`code:"BAD_REQUEST"`, issues joined with a trailing ", "), Prisma/DB faults
  (`code:"INTERNAL_SERVER_ERROR"`), the global validation pipe (`message:"Bad Request Exception"`,
  `details:{"errors":[…]}`), the throttler (`code:"ThrottlerException"`, `details` = the message string);
- raw (core `HttpError`s that fall through to Nest's base filter): `{"statusCode":<n>,"message":"<msg>"}`.

`FieldError` / `format_pipe` reproduce the booking input pipe's message format:
`"<prop> property is wrong,<constraints> <children>"`, siblings joined by ", ".

The second half validates request bodies the way Cal.com's pipes do (`parse_create`, `parse_legacy_create`,
`parse_simple_body`) and turns what they reject into the errors above. E-mail and phone checks happen later, in
core (`rules.response_issues`, Zod shape), after the event type was found: the attendee's e-mail and phone are
passed on as given, untrimmed.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

JSON = dict[str, Any]

THROTTLE_MESSAGE = "Too many requests. Please try again later."
DB_FAULT_MESSAGE = "There was an error, please try again later."
EXCEPTION_NAMES = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    409: "ConflictException",
    422: "UnprocessableEntityException",
    500: "InternalServerErrorException",
}
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class ApiError(Exception):
    """An error answer: HTTP status plus the JSON body to send."""

    def __init__(self, status: int, body: JSON) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _wrapped(status: int, path: str, error: JSON) -> ApiError:
    return ApiError(status, {"status": "error", "timestamp": timestamp(), "path": path, "error": error})


def http_exception(status: int, message: str, path: str) -> ApiError:
    """`new XxxException("message")` through the HttpExceptionFilter."""
    details = {"message": message, "error": REASONS[status], "statusCode": status}
    return _wrapped(status, path, {"code": EXCEPTION_NAMES[status], "message": message, "details": details})


def bad_request(message: str, path: str) -> ApiError:
    return http_exception(400, message, path)


def not_found(message: str, path: str) -> ApiError:
    return http_exception(404, message, path)


def raw(status: int, message: str) -> ApiError:
    """A core HttpError that no filter maps: Nest's bare body."""
    return ApiError(status, {"statusCode": status, "message": message})


def zod(path: str, issues: list[tuple[str, str]]) -> ApiError:
    """ZodExceptionFilter: `issues.reduce((acc, i) => `${path} - ${message}, ${acc}`, "")`."""
    message = ""
    for issue_path, issue_message in issues:
        message = f"{issue_path} - {issue_message}, {message}"
    return _wrapped(400, path, {"code": "BAD_REQUEST", "message": message})


def throttled(path: str) -> ApiError:
    return _wrapped(429, path, {"code": "ThrottlerException", "message": THROTTLE_MESSAGE, "details": THROTTLE_MESSAGE})


def db_fault(path: str) -> ApiError:
    return _wrapped(500, path, {"code": "INTERNAL_SERVER_ERROR", "message": DB_FAULT_MESSAGE})


def route_not_found(method: str, path: str) -> ApiError:
    """Nest's answer when no controller (for this version) serves the route."""
    return http_exception(404, f"Cannot {method} {path}", path)


@dataclass
class FieldError:
    """One class-validator ValidationError: a property, its failed constraints, nested errors."""

    property: str
    constraints: dict[str, str] = field(default_factory=dict)
    children: list[FieldError] = field(default_factory=list)
    value: Any = None


def not_whitelisted(prop: str, value: Any = None) -> FieldError:
    return FieldError(prop, {"whitelistValidation": f"property {prop} should not exist"}, value=value)


def format_pipe(errors: list[FieldError]) -> str:
    parts = []
    for e in errors:
        children = format_pipe(e.children) if e.children else ""
        parts.append(f"{e.property} property is wrong,{', '.join(e.constraints.values())} {children}")
    return ", ".join(parts)


def pipe_error(errors: list[FieldError], path: str) -> ApiError:
    """The booking input pipes: BadRequestException(format_pipe(errors))."""
    return bad_request(format_pipe(errors), path)


def _error_json(e: FieldError) -> JSON:
    return {
        "value": e.value,
        "property": e.property,
        "children": [_error_json(c) for c in e.children],
        "constraints": dict(e.constraints),
    }


def global_pipe_error(errors: list[FieldError], path: str) -> ApiError:
    """The global ValidationPipe: BadRequestException({errors}) → message "Bad Request Exception"."""
    details = {"errors": [_error_json(e) for e in errors]}
    return _wrapped(400, path, {"code": "BadRequestException", "message": "Bad Request Exception", "details": details})


# -- request validation: the booking input pipes and the global ValidationPipe --------------------------------
# fmt: off
LANGUAGES = (
    "ar", "ca", "de", "es", "eu", "he", "id", "ja", "lv", "pl", "ro", "sr", "th", "vi", "az", "cs", "el", "es-419",
    "fi", "hr", "it", "km", "nl", "pt", "ru", "sv", "tr", "zh-CN", "bg", "da", "en", "et", "fr", "hu", "iw", "ko",
    "no", "pt-BR", "sk", "ta", "uk", "zh-TW", "bn",
)
CREATE_FIELDS = frozenset({
    "start", "lengthInMinutes", "eventTypeId", "eventTypeSlug", "username", "teamSlug", "organizationSlug",
    "attendee", "guests", "meetingUrl", "location", "metadata", "bookingFieldsResponses", "routing",
    "emailVerificationCode", "allowConflicts", "recurrenceCount",
})
# fmt: on
METADATA_MESSAGE = (
    "Metadata must have at most 50 keys, each key up to 40 characters, and string values up to 500 characters."
)
CONTACT_MESSAGE = "Attendee must have at least one contact method (email or phone number)"
EVENT_TYPE_MISSING = "Either eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug must be provided"
CREATE_FIELDS_2026 = CREATE_FIELDS | {"allowBookingOutOfBounds", "skipBookingLimits"}
ATTENDEE_FIELDS = ("name", "email", "timeZone", "phoneNumber", "language")
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_iso_ms(text: Any) -> int | None:
    """An ISO-8601 date(-time) as epoch milliseconds; no offset means UTC. None if not ISO-8601."""
    if not isinstance(text, str) or not _ISO_RE.match(text):
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones() | {"UTC"}}


def valid_time_zone(value: Any) -> bool:
    """class-validator's IsTimeZone (Intl accepts IANA names case-insensitively)."""
    return isinstance(value, str) and value.lower() in _zones()


def canonical_time_zone(value: str) -> str:
    """The IANA spelling of a zone `valid_time_zone` accepted ("europe/berlin" → "Europe/Berlin")."""
    return _zones().get(value.lower(), "UTC")


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def metadata_ok(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) > 50:
        return False
    for k, v in value.items():
        if len(k) > 40:
            return False
        if isinstance(v, str):
            if len(v) > 500:
                return False
        elif not (_is_number(v) or isinstance(v, bool)):
            return False
    return True


@dataclass
class CreateInput:
    start_ms: int
    name: str
    time_zone: str
    email: str | None = None
    phone: str | None = None
    language: str = "en"
    event_type_id: int | None = None
    event_type_slug: str | None = None
    username: str | None = None
    team_slug: str | None = None
    length: int | None = None
    recurrence_count: int | None = None
    guests: list[str] = field(default_factory=list)
    meeting_url: str | None = None
    location: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    responses: dict[str, Any] = field(default_factory=dict)
    allow_conflicts: bool = False


def _type_checks(body: JSON, checks: dict[str, tuple[type | tuple[type, ...], str, str]]) -> list[FieldError]:
    """Optional fields: present and not null → must have the type (constraint name, message)."""
    out = []
    for prop, (types, constraint, message) in checks.items():
        v = body.get(prop)
        if v is not None and (not isinstance(v, types) or (bool not in _as_tuple(types) and isinstance(v, bool))):
            out.append(FieldError(prop, {constraint: message}, value=v))
    return out


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def parse_json_body(raw: bytes, path: str) -> Any:
    """A request body as Express's JSON parser hands it to Nest: empty is `{}`, bad JSON a 400."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"Unexpected token in JSON at position {getattr(exc, 'pos', 0)}", path) from None


def _body_object(body: Any, path: str) -> JSON:
    if body is None:
        raise bad_request("Body is required", path)
    if not isinstance(body, dict):
        raise bad_request("Body should be an object", path)
    return body


def parse_create(body: Any, version: str, path: str) -> CreateInput:
    """CreateBookingInput_2024_08_13 through its pipe (whitelist + forbidNonWhitelisted)."""
    body = _body_object(body, path)
    allowed = CREATE_FIELDS_2026 if version == "2026-02-25" else CREATE_FIELDS
    errs = [not_whitelisted(k, v) for k, v in body.items() if k not in allowed]
    start_ms = parse_iso_ms(body.get("start"))
    if start_ms is None:
        errs.append(
            FieldError("start", {"isDateString": "start must be a valid ISO 8601 date string"}, value=body.get("start"))
        )
    length = body.get("lengthInMinutes")
    if length is not None:
        c = {}
        if not _is_number(length) or length < 1:
            c["min"] = "lengthInMinutes must not be less than 1"
        if not _is_int(length):
            c["isInt"] = "lengthInMinutes must be an integer number"
        if c:
            errs.append(FieldError("lengthInMinutes", c, value=length))
    count = body.get("recurrenceCount")
    if count is not None and (not _is_int(count) or count < 1):
        c = {"isInt": "recurrenceCount must be an integer number"} if not _is_int(count) else {}
        c.setdefault("min", "recurrenceCount must not be less than 1")
        errs.append(FieldError("recurrenceCount", c, value=count))
    et_id = body.get("eventTypeId")
    if et_id is not None and not _is_int(et_id):
        errs.append(FieldError("eventTypeId", {"isInt": "eventTypeId must be an integer number"}, value=et_id))
    att = body.get("attendee")
    if not isinstance(att, dict):
        message = "nested property attendee must be either object or array"
        errs.append(FieldError("attendee", {"nestedValidation": message}, value=att))
    else:
        kids = [not_whitelisted(k, v) for k, v in att.items() if k not in ATTENDEE_FIELDS]
        if not isinstance(att.get("name"), str):
            kids.append(FieldError("name", {"isString": "name must be a string"}, value=att.get("name")))
        email, phone = att.get("email"), att.get("phoneNumber")
        kids += _type_checks(att, {"email": (str, "isString", "email must be a string")})
        kids += _type_checks(att, {"phoneNumber": (str, "isString", "phoneNumber must be a string")})
        if not (isinstance(email, str) and email.strip()) and not (isinstance(phone, str) and phone.strip()):
            kids.append(FieldError("attendee email or phone", {"requireEmailOrPhone": CONTACT_MESSAGE}))
        if not valid_time_zone(att.get("timeZone")):
            tz_error = {"isTimeZone": "timeZone must be a valid IANA time-zone"}
            kids.append(FieldError("timeZone", tz_error, value=att.get("timeZone")))
        if att.get("language") is not None and att.get("language") not in LANGUAGES:
            message = f"language must be one of the following values: {', '.join(LANGUAGES)}"
            kids.append(FieldError("language", {"isEnum": message}, value=att.get("language")))
        if kids:
            errs.append(FieldError("attendee", {}, kids, value=att))
    guests = body.get("guests")
    if guests is not None:
        if not isinstance(guests, list):
            errs.append(FieldError("guests", {"isArray": "guests must be an array"}, value=guests))
        elif not all(isinstance(g, str) for g in guests):
            errs.append(FieldError("guests", {"isString": "each value in guests must be a string"}, value=guests))
    url = body.get("meetingUrl")
    if url is not None and not (isinstance(url, str) and re.match(r"^https?://[^\s/]+\.[^\s]+$", url)):
        errs.append(FieldError("meetingUrl", {"isUrl": "meetingUrl must be a URL address"}, value=url))
    loc = body.get("location")
    if loc is not None and not (isinstance(loc, str) or (isinstance(loc, dict) and isinstance(loc.get("type"), str))):
        message = "location must be a string or a location object with a 'type'"
        errs.append(FieldError("location", {"validateBookingLocation": message}, value=loc))
    meta = body.get("metadata")
    if meta is not None and not metadata_ok(meta):
        c = {"validateMetadata": METADATA_MESSAGE}
        if not isinstance(meta, dict):
            c["isObject"] = "metadata must be an object"
        errs.append(FieldError("metadata", c, value=meta))
    errs += _type_checks(
        body,
        {
            "bookingFieldsResponses": (dict, "isObject", "bookingFieldsResponses must be an object"),
            "routing": (dict, "isObject", "routing must be an object"),
            "emailVerificationCode": (str, "isString", "emailVerificationCode must be a string"),
            "eventTypeSlug": (str, "isString", "eventTypeSlug must be a string"),
            "username": (str, "isString", "username must be a string"),
            "teamSlug": (str, "isString", "teamSlug must be a string"),
            "organizationSlug": (str, "isString", "organizationSlug must be a string"),
            **{
                k: (bool, "isBoolean", f"{k} must be a boolean value")
                for k in ("allowConflicts", "allowBookingOutOfBounds", "skipBookingLimits")
            },
        },
    )
    if errs:
        raise pipe_error(errs, path)
    assert start_ms is not None and isinstance(att, dict)
    slug = body.get("eventTypeSlug")
    if et_id is None and not (slug and (body.get("username") or body.get("teamSlug"))):
        raise bad_request(EVENT_TYPE_MISSING, path)
    return CreateInput(
        start_ms=start_ms,
        name=att["name"],
        time_zone=att["timeZone"],
        email=att.get("email"),
        phone=att.get("phoneNumber"),
        language=att.get("language") or "en",
        event_type_id=int(et_id) if et_id is not None else None,
        event_type_slug=slug,
        username=body.get("username"),
        team_slug=body.get("teamSlug"),
        length=int(length) if length is not None else None,
        recurrence_count=int(count) if count is not None else None,
        guests=list(guests or []),
        meeting_url=url,
        location=loc,
        metadata=dict(meta or {}),
        responses=dict(body.get("bookingFieldsResponses") or {}),
        allow_conflicts=body.get("allowConflicts") is True,
    )


def parse_legacy_create(body: Any, path: str) -> CreateInput:
    """CreateBookingInput_2024_04_15 through the global ValidationPipe (whitelist, no forbid: extras dropped)."""
    body = _body_object(body, path)
    errs: list[FieldError] = []

    def check(prop: str, ok: bool, constraint: str, message: str) -> None:
        if not ok:
            errs.append(FieldError(prop, {constraint: message}, value=body.get(prop)))

    check("start", isinstance(body.get("start"), str), "isString", "start must be a string")
    number_message = "eventTypeId must be a number conforming to the specified constraints"
    check("eventTypeId", _is_number(body.get("eventTypeId")), "isNumber", number_message)
    check("timeZone", valid_time_zone(body.get("timeZone")), "isTimeZone", "timeZone must be a valid IANA time-zone")
    check("language", isinstance(body.get("language"), str), "isString", "language must be a string")
    check("metadata", isinstance(body.get("metadata"), dict), "isObject", "metadata must be an object")
    responses = body.get("responses")
    name: Any = None
    if responses is not None:
        if not isinstance(responses, dict):
            message = "nested property responses must be either object or array"
            errs.append(FieldError("responses", {"nestedValidation": message}, value=responses))
        else:
            name = responses.get("name")
            if isinstance(name, dict) and isinstance(name.get("firstName"), str):
                name = f"{name['firstName']} {name.get('lastName') or ''}".strip()
            if not (isinstance(name, str) and name.strip()):
                message = "Name must be either a non-empty string or an object with non-empty firstName and lastName"
                kid = FieldError("name", {"validateBookingName": message}, value=responses.get("name"))
                errs.append(FieldError("responses", {}, [kid], value=responses))
    if errs:
        raise global_pipe_error(errs, path)
    if not isinstance(responses, dict):
        raise zod(path, [("responses", "Required")])
    start_ms = parse_iso_ms(body["start"])
    if start_ms is None:
        raise bad_request("Invalid start date", path)
    email = responses.get("email")
    return CreateInput(
        start_ms=start_ms,
        name=str(name),
        time_zone=body["timeZone"],
        email=email if isinstance(email, str) and email else None,
        language=body["language"],
        event_type_id=int(body["eventTypeId"]),
        metadata=dict(body["metadata"]),
        responses={k: v for k, v in responses.items() if k != "name"},
    )


def parse_simple_body(
    body: Any, path: str, fields: Mapping[str, tuple[type, str]], required: tuple[str, ...] = ()
) -> JSON:
    """Cancel/reschedule inputs: whitelist + forbidNonWhitelisted, typed optional fields, required date strings."""
    obj = _body_object({} if body is None else body, path)
    errs = [not_whitelisted(k, v) for k, v in obj.items() if k not in fields]
    for prop, (typ, message) in fields.items():
        v = obj.get(prop)
        if prop in required and parse_iso_ms(v) is None:
            errs.append(FieldError(prop, {"isDateString": f"{prop} must be a valid ISO 8601 date string"}, value=v))
        elif (
            v is not None and prop not in required and (not isinstance(v, typ) or (typ is str and isinstance(v, bool)))
        ):
            errs.append(FieldError(prop, {"isType": message}, value=v))
    if errs:
        raise pipe_error(errs, path)
    return obj
