"""What the event type and profile read endpoints answer (sources and versions in /work/notes/simulator.md).

- GET /v2/event-types/{id}, `cal-api-version: 2024-06-14`: `EventTypeOutput_2024_06_14` (a personal event type)
  or `TeamEventTypeOutput_2024_06_14` (a team's), packages/platform/types/event-types/event-types_2024_06_14/
  outputs/event-type.output.ts. Without that header (or with 2024-04-15 / 2024-06-11) the older controller
  answers `{data: {eventType: {…, length, …}}}`: no `lengthInMinutes` there.
- GET /v2/teams/{teamId}/event-types/{id}: the team shape, any version.
- GET /v2/me: `MeOutput` (apps/api/v2/src/ee/me/outputs/me.output.ts), any version.
"""

from __future__ import annotations

from typing import Any

from worker.devtools.simulator.model import EventType, User

JSON = dict[str, Any]


def _booking_fields(et: EventType) -> list[JSON]:
    """The default booking fields as the 2024-06-14 output shows them (booking-fields.output.ts)."""
    text = {"required": False, "hidden": False, "isDefault": True, "disableOnPrefill": False}
    return [
        {"isDefault": True, "type": "name", "slug": "name", "required": True, "disableOnPrefill": False},
        {"isDefault": True, "type": "email", "slug": "email", "required": et.email_required, "hidden": False},
        {
            "isDefault": True,
            "type": "phone",
            "slug": "attendeePhoneNumber",
            "required": et.phone_field == "required",
            "hidden": et.phone_field == "hidden",
            "disableOnPrefill": False,
        },
        {**text, "type": "text", "slug": "title"},
        {**text, "type": "textarea", "slug": "notes"},
        {**text, "type": "multiemail", "slug": "guests"},
        {**text, "type": "textarea", "slug": "rescheduleReason"},
    ]


def _metadata(et: EventType) -> JSON:
    return {"multipleDuration": list(et.length_options)} if et.length_options else {}


def _base(et: EventType) -> JSON:
    out: JSON = {"id": et.id, "lengthInMinutes": et.length_in_minutes}
    if et.length_options:
        out["lengthInMinutesOptions"] = list(et.length_options)
    out.update(
        {
            "title": et.title,
            "slug": et.slug,
            "description": "",
            "locations": [{"type": "integration", "integration": "cal-video"}],
            "bookingFields": _booking_fields(et),
            "disableGuests": False,
            "slotInterval": None,
            "minimumBookingNotice": 0,
            "beforeEventBuffer": 0,
            "afterEventBuffer": 0,
            "recurrence": et.recurrence.to_json() if et.recurrence else None,
            "metadata": _metadata(et),
            "price": 0,
            "currency": "usd",
            "lockTimeZoneToggleOnBookingPage": False,
            "seatsPerTimeSlot": None,
            "forwardParamsSuccessRedirect": True,
            "successRedirectUrl": None,
            "isInstantEvent": False,
            "seatsShowAvailabilityCount": False,
            "scheduleId": None,
            "hidden": False,
            "bookingRequiresAuthentication": False,
        }
    )
    return out


def event_type_output(et: EventType) -> JSON:
    """`data` of GET /v2/event-types/{id} (2024-06-14): the team shape for a team's event type."""
    if et.team_id is not None:
        return team_event_type_output(et)
    user = {
        "id": et.host_user_id,
        "name": et.host_name,
        "username": et.host_username,
        "avatarUrl": None,
        "weekStart": "Monday",
        "brandColor": None,
        "darkBrandColor": None,
        "metadata": {},
    }
    return {**_base(et), "ownerId": et.host_user_id, "users": [user]}


def team_event_type_output(et: EventType) -> JSON:
    host = {
        "userId": et.host_user_id,
        "name": et.host_name,
        "username": et.host_username,
        "avatarUrl": None,
        "mandatory": False,
        "priority": "medium",
    }
    return {
        **_base(et),
        "teamId": et.team_id,
        "ownerId": None,
        "parentEventTypeId": None,
        "hosts": [host],
        "assignAllTeamMembers": False,
        "schedulingType": "collective",
        "team": {"id": et.team_id, "slug": f"team-{et.team_id}", "name": f"Team {et.team_id}"},
    }


def legacy_event_type_output(et: EventType) -> JSON:
    """`data` of the 2024-04-15 controller: `{eventType: …}` with the database's names (`length`)."""
    phone: JSON = {"name": "attendeePhoneNumber", "type": "phone", "required": et.phone_field == "required"}
    phone["hidden"] = et.phone_field == "hidden"
    rec = et.recurrence
    return {
        "eventType": {
            "id": et.id,
            "title": et.title,
            "slug": et.slug,
            "length": et.length_in_minutes,
            "hidden": False,
            "userId": et.host_user_id if et.team_id is None else None,
            "teamId": et.team_id,
            "metadata": _metadata(et),
            "recurringEvent": (
                {"freq": ("yearly", "monthly", "weekly").index(rec.frequency), "interval": rec.interval}
                | {"count": rec.occurrences}
                if rec
                else None
            ),
            "bookingFields": [
                {"name": "name", "type": "name", "required": True},
                {"name": "email", "type": "email", "required": et.email_required},
                phone,
            ],
        }
    }


def me_output(user: User) -> JSON:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "name": user.name,
        "avatarUrl": None,
        "bio": None,
        "timeFormat": 24,
        "defaultScheduleId": None,
        "weekStart": "Monday",
        "timeZone": user.time_zone,
        "organizationId": None,
    }
