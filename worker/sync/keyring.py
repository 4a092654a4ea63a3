"""Which Cal.com key (and team) each company's bookings are sent with, read from the credentials directory.

Exactly like the app we mirror: a company's own key (``$CALSYNC_CREDENTIALS_DIR/<company_id>/calcom_api_key``),
else the one fallback key (CALCOM_API_KEY, CALCOM_API_KEY_FILE or the systemd credential). A company with neither,
or whose own key file is unusable (readable by others, empty, too large), has no key: a configuration problem of
that company (its syncs are held and it is reported as ``company:<id>``), not a failure of each appointment.

A key is named in the database and the logs by its ``key_ref``, never by itself: ``company:<id>`` for a company's
own key, ``default`` for the fallback (also when a company's file holds the fallback key: one key, one rate limit).
Files are read again after ``ttl_s`` seconds, so a key added or rotated is used without a restart.
The team id (``<company_id>/calcom_team_id``, a number, optional) is for team-scoped endpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from worker.credentials import API_KEY, SecretFileError, company_secret, read_secret_file

DEFAULT = "default"
TEAM_ID = "calcom_team_id"


@dataclass(frozen=True)
class Credential:
    key_ref: str
    api_key: str = field(repr=False)
    team_id: int | None = None


@dataclass(frozen=True)
class NoKey:
    """Why a company has no key, as one line an operator can act on (names files, never a key)."""

    key_ref: str
    message: str


def company_ref(company_id: int) -> str:
    return f"company:{company_id}"


class Keyring:
    def __init__(self, root: Path | None, default_key: str | None, ttl_s: float = 5.0) -> None:
        self.root = root
        self.default_key = default_key or None
        self.ttl_s = ttl_s
        self._known: dict[int | None, tuple[float, Credential | NoKey]] = {}

    def keys(self) -> set[str]:
        """Every key read so far (for redaction)."""
        found = {c.api_key for _, c in self._known.values() if isinstance(c, Credential)}
        return found | ({self.default_key} if self.default_key else set())

    def forget(self, company_id: int | None) -> None:
        self._known.pop(company_id, None)

    def for_company(self, company_id: int | None) -> Credential | NoKey:
        hit = self._known.get(company_id)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        found = self._read(company_id)
        self._known[company_id] = (time.monotonic(), found)
        return found

    def _read(self, company_id: int | None) -> Credential | NoKey:
        if company_id is None or self.root is None:
            return self._fallback(company_id)
        ref = company_ref(company_id)
        try:
            key = company_secret(self.root, company_id, API_KEY)
        except SecretFileError as e:
            return NoKey(ref, f"company {company_id}'s key cannot be used: {e}")
        team = self._team(company_id)
        if isinstance(team, NoKey):
            return team
        if key is None:
            fallback = self._fallback(company_id)
            return (
                Credential(fallback.key_ref, fallback.api_key, team) if isinstance(fallback, Credential) else fallback
            )
        if key == self.default_key:
            return Credential(DEFAULT, key, team)
        return Credential(ref, key, team)

    def _fallback(self, company_id: int | None) -> Credential | NoKey:
        if self.default_key:
            return Credential(DEFAULT, self.default_key)
        where = (
            f"{self.root}/{company_id}/{API_KEY}" if self.root and company_id is not None else "CALSYNC_CREDENTIALS_DIR"
        )
        who = f"company {company_id}" if company_id is not None else "an appointment without a company"
        ref = company_ref(company_id) if company_id is not None else DEFAULT
        return NoKey(ref, f"{who} has no Cal.com key: put it in {where} (mode 600), or set the fallback CALCOM_API_KEY")

    def _team(self, company_id: int) -> int | NoKey | None:
        assert self.root is not None
        path = self.root / str(company_id) / TEAM_ID
        if not path.exists():
            return None
        try:
            text = read_secret_file(path, check_mode=False)
        except SecretFileError as e:
            return NoKey(company_ref(company_id), f"company {company_id}'s team id cannot be used: {e}")
        if not text.isdigit() or not 0 < int(text) < 2**63:
            return NoKey(company_ref(company_id), f"company {company_id}'s team id in {path} is not a positive number")
        return int(text)
