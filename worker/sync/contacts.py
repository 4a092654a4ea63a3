"""What of a customer's contact Cal.com accepts, decided before a booking is sent (pure: no I/O).

- E-mail: ``calcom_accepts_email`` is Cal.com's own rule (``emailSchema`` of packages/lib/emailSchema.ts: at most 254
  characters and its regex, nothing trimmed). The database applies the same rule (``calsync.is_usable_email``, the
  ``email_accepted`` of the sync state); tests/test_contacts.py checks the two, and the simulator's, on the same
  cases. An e-mail it refuses is never sent: the sync state's ``placeholder_email`` goes in its place.
- Phone: Cal.com runs libphonenumber's ``isValidPhoneNumber`` with no default country, so only international
  numbers pass. ``normalise_phone`` parses the stored phone with the salon's region (national formats such as
  "030 1234567" in DE) and gives E.164 ("+49301234567") for a valid number, or a reason; a phone that is not valid is
  never sent. A ``reportable`` verdict is a data-quality finding for ``calsync.record_contact_finding``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

# the salon's settings (calsync.company_settings) when its row or column is NULL
DEFAULT_PHONE_REGION = "DE"  # CALSYNC_PHONE_REGION overrides it for the whole worker
DEFAULT_LANGUAGE = "de"  # the app we mirror sends de (Cal.com's own default is en)

MAX_EMAIL_LENGTH = 254
# Cal.com's emailRegex /^(?!\.)(?!.*\.\.)([A-Z0-9_+-\.']*)[A-Z0-9_+'-]@([A-Z0-9][A-Z0-9\-]*\.)+[A-Z]{2,}$/i with its
# range +-. spelled out (+ , - .) and /i as explicit a-z / A-Z (JavaScript folds ASCII only without /u)
_EMAIL_RE = re.compile(
    r"(?!\.)(?!.*\.\.)[A-Za-z0-9_+,.'-]*[A-Za-z0-9_+'-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}", re.ASCII
)
_REGION_RE = re.compile(r"[A-Z]{2}", re.ASCII)


def calcom_accepts_email(s: str) -> bool:
    """Whether Cal.com accepts ``s`` as a required attendee e-mail (the same rule as ``calsync.is_usable_email``)."""
    return len(s) <= MAX_EMAIL_LENGTH and _EMAIL_RE.fullmatch(s) is not None


def parse_region(text: str) -> str:
    """A phone region as calsync.company_settings and CALSYNC_PHONE_REGION hold it: ISO 3166 alpha-2, upper case,
    known to libphonenumber. Raises ValueError otherwise."""
    region = text.strip().upper()
    if not _REGION_RE.fullmatch(region) or region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"not a country libphonenumber knows (ISO 3166 alpha-2, such as DE or AT): {text!r}")
    return region


class PhoneProblem(StrEnum):
    MISSING = "missing"  # NULL or blank: nothing to send, nothing to report
    ANONYMOUS = "anonymous"  # the voice agent's anonymous_<ts>_<hash> stand-in: not a phone, known as such
    NOT_A_NUMBER = "not_a_number"
    INVALID_COUNTRY_CODE = "invalid_country_code"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID = "invalid"  # a possible length, but no valid number (unassigned range, wrong for the region)


# a verdict on these is not a finding about the stored data (missing contacts are remediation.customers_missing_contact)
_NOT_FINDINGS = frozenset({PhoneProblem.MISSING, PhoneProblem.ANONYMOUS})


@dataclass(frozen=True, slots=True)
class PhoneVerdict:
    """What to send for a stored phone: ``e164`` when it is valid, else None with the ``problem`` and a ``reason``
    in words. The reason never repeats the number (it is shown where the number is not)."""

    e164: str | None
    problem: PhoneProblem | None = None
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.e164 is not None

    @property
    def reportable(self) -> bool:
        """A stored phone that Cal.com would refuse: record it (calsync.record_contact_finding); a verdict that is
        not reportable resolves an open finding (calsync.resolve_contact_finding)."""
        return self.problem is not None and self.problem not in _NOT_FINDINGS


_PARSE_PROBLEMS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: PhoneProblem.INVALID_COUNTRY_CODE,
    phonenumbers.NumberParseException.NOT_A_NUMBER: PhoneProblem.NOT_A_NUMBER,
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: PhoneProblem.TOO_SHORT,
    phonenumbers.NumberParseException.TOO_SHORT_NSN: PhoneProblem.TOO_SHORT,
    phonenumbers.NumberParseException.TOO_LONG: PhoneProblem.TOO_LONG,
}
_LENGTH_PROBLEMS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: PhoneProblem.INVALID_COUNTRY_CODE,
    phonenumbers.ValidationResult.TOO_SHORT: PhoneProblem.TOO_SHORT,
    phonenumbers.ValidationResult.TOO_LONG: PhoneProblem.TOO_LONG,
    phonenumbers.ValidationResult.INVALID_LENGTH: PhoneProblem.TOO_SHORT,  # between valid lengths: digits missing
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: PhoneProblem.TOO_SHORT,  # dialled locally: no area code
}


def _reason(problem: PhoneProblem, region: str, international: bool) -> str:
    where = "for its country code" if international else f"in {region} (a foreign number needs its +country code)"
    return {
        PhoneProblem.NOT_A_NUMBER: "not a phone number",
        PhoneProblem.INVALID_COUNTRY_CODE: (
            "an unknown country code"
            if international
            else f"a national number, but the phone region {region!r} is not a country libphonenumber knows"
        ),
        PhoneProblem.TOO_SHORT: f"too short for a phone number {where}",
        PhoneProblem.TOO_LONG: f"too long for a phone number {where}",
        PhoneProblem.INVALID: f"not a valid phone number {where}",
    }[problem]


def normalise_phone(raw: str | None, region: str) -> PhoneVerdict:
    """The stored phone as Cal.com accepts it: E.164 for a valid number, national formats parsed with ``region``
    (the salon's ISO 3166 alpha-2 country, e.g. "030 1234567" with DE is "+49301234567"); else no number and why
    (blank, the anonymous_… stand-in, not a number, too short or long, not valid for the region). An extension is
    dropped (E.164 has none)."""
    value = (raw or "").strip()
    if not value:
        return PhoneVerdict(None, PhoneProblem.MISSING, "no phone")
    if value.startswith("anonymous"):
        return PhoneVerdict(None, PhoneProblem.ANONYMOUS, "the voice agent's anonymous_… stand-in, not a phone")
    region = region.strip().upper()
    known = region if region in phonenumbers.SUPPORTED_REGIONS else None
    international = value.startswith("+")
    try:
        number = phonenumbers.parse(value, known)
    except phonenumbers.NumberParseException as exc:
        problem = _PARSE_PROBLEMS.get(exc.error_type, PhoneProblem.NOT_A_NUMBER)
        return PhoneVerdict(None, problem, _reason(problem, region, international))
    international = international or number.country_code != phonenumbers.country_code_for_region(known or "ZZ")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _LENGTH_PROBLEMS:
        problem = _LENGTH_PROBLEMS[possible]
        return PhoneVerdict(None, problem, _reason(problem, region, international))
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # what Cal.com checks: the E.164 form, with no default country
    if not (phonenumbers.is_valid_number(number) and phonenumbers.is_valid_number(phonenumbers.parse(e164, None))):
        return PhoneVerdict(None, PhoneProblem.INVALID, _reason(PhoneProblem.INVALID, region, international))
    return PhoneVerdict(e164)
