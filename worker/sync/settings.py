"""Worker settings: every one can be given as a flag or an environment variable (shown in --help).

Each setting is read by one typed parser (`Setting.read`): the flag if given, else the environment variable (empty
counts as unset), else the default. A value the parser cannot use stops the command before anything connects, with a
`SettingError` (exit 2) that names the variable and the flag and says what to give instead.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.credentials import read_secret_file
from worker.errors import CliError, Exit, SettingError
from worker.sync.contacts import parse_region


class Invalid(ValueError):
    """What a parser raises: why the text cannot be used."""


@dataclass(frozen=True)
class Integer:
    low: int
    high: int | None = None

    @property
    def expected(self) -> str:
        if self.high is None:
            return f"a whole number >= {self.low}"
        return f"a whole number from {self.low} to {self.high}"

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise Invalid("not a whole number") from None
        if value < self.low or (self.high is not None and value > self.high):
            raise Invalid("out of range")
        return value


@dataclass(frozen=True)
class Number:
    """A finite decimal number >= low (> low when `exclusive`)."""

    low: float
    exclusive: bool = False

    @property
    def expected(self) -> str:
        return f"a number {'>' if self.exclusive else '>='} {self.low:g}"

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise Invalid("not a number") from None
        if not math.isfinite(value):
            raise Invalid("not a finite number")
        if value < self.low or (self.exclusive and value == self.low):
            raise Invalid("out of range")
        return value


@dataclass(frozen=True)
class Text:
    expected: str = "a non-empty text"

    def __call__(self, text: str) -> str:
        if not text.strip():
            raise Invalid("empty")
        return text.strip()


@dataclass(frozen=True)
class Region:
    expected: str = "a country libphonenumber knows, ISO 3166 alpha-2 such as DE or AT"

    def __call__(self, text: str) -> str:
        try:
            return parse_region(text)
        except ValueError:
            raise Invalid("not such a country") from None


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    @property
    def expected(self) -> str:
        return " or ".join(repr(c) for c in self.choices)

    def __call__(self, text: str) -> str:
        if text not in self.choices:
            raise Invalid("not one of the choices")
        return text


_DURATION = re.compile(r"\d+(\.\d+)?\s*(us|ms|s|min|h|d)?")


@dataclass(frozen=True)
class Duration:
    """A PostgreSQL time setting, such as 500ms, 30s or 2min (a bare number is milliseconds)."""

    expected: str = "a duration such as 500ms, 30s or 2min"

    def __call__(self, text: str) -> str:
        if not _DURATION.fullmatch(text):
            raise Invalid("not a PostgreSQL duration")
        return text


@dataclass(frozen=True)
class HttpUrl:
    """An http(s) URL without credentials, query or fragment; a trailing ``/`` or ``/v2`` is dropped, because the
    client appends ``/v2/bookings`` itself (Cal.com's documentation gives the API as ``https://api.cal.com/v2``)."""

    expected: str = "an http:// or https:// URL such as https://api.cal.com"

    def __call__(self, text: str) -> str:
        parts = urllib.parse.urlsplit(text.strip())
        if parts.scheme.lower() not in ("http", "https"):
            raise Invalid(f"Cal.com is reached over http or https, not {parts.scheme or 'a bare host name'}")
        if not parts.hostname:
            raise Invalid("no host")
        if parts.username or parts.password:
            raise Invalid("credentials do not go in the URL (it is logged): the API key is read from CALCOM_API_KEY")
        if parts.query or parts.fragment:
            raise Invalid("a query or fragment has no place in a base URL")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise Invalid("the port is not a number from 0 to 65535") from None
        path = parts.path.rstrip("/").removesuffix("/v2").rstrip("/")
        return urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))


@dataclass(frozen=True)
class Directory:
    expected: str = "an existing directory"

    def __call__(self, text: str) -> Path:
        path = Path(text.strip())
        if not path.is_dir():
            raise Invalid("not a directory")
        return path


@dataclass(frozen=True)
class Setting:
    """One setting: its field, environment variable, parser and help."""

    name: str
    env: str
    parse: Callable[[str], Any]
    help: str
    has_flag: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def expected(self) -> str:
        return str(getattr(self.parse, "expected", "a valid value"))

    def read(self, flag_value: str | None) -> Any:
        """The flag's value if given, else the environment variable's; None when neither is set."""
        if flag_value is not None:
            source, text = self.flag, flag_value
        elif text := os.environ.get(self.env, "").strip():
            source = self.env
        else:
            return None
        try:
            return self.parse(text)
        except Invalid as e:
            names = f"{self.env} (flag {self.flag})" if self.has_flag else self.env
            raise SettingError(
                source=source, value=text, problem=str(e), names=names, expected=f"{self.expected}, or unset it"
            ) from None


@dataclass
class WorkerSettings:
    database_url: str
    api_key: str
    base_url: str = "https://api.cal.com"
    concurrency: int = 8
    rate_limit: int = 120
    rate_window_s: float = 60.0
    batch_size: int = 32
    lease_s: float = 300.0
    max_attempts: int = 8
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0
    poll_interval_s: float = 5.0
    request_timeout_s: float = 15.0
    max_response_bytes: int = 1024 * 1024  # a discovery page of 250 bookings is ~270 KB here, more at Cal.com
    event_type_ttl_s: float = 300.0
    key_probe_s: float = 30.0
    credentials_dir: Path | None = None  # <dir>/<company_id>/calcom_api_key: each company's own key
    credentials_ttl_s: float = 5.0
    key_concurrency: int = 4
    max_rate_wait_s: float = 10.0
    phone_region: str = "DE"
    shutdown_deadline_s: float = 20.0
    metrics_port: int | None = None
    worker_id: str = ""
    once: bool = False

    def __post_init__(self) -> None:
        if not self.worker_id:
            self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


SETTINGS = (
    Setting("base_url", "CALCOM_BASE_URL", HttpUrl(), "Cal.com API base URL, with or without /v2"),
    Setting("concurrency", "CALSYNC_CONCURRENCY", Integer(1), "appointments synced at once"),
    Setting("rate_limit", "CALSYNC_RATE_LIMIT", Integer(1), "requests per rate window allowed by Cal.com for the key"),
    Setting("rate_window_s", "CALSYNC_RATE_WINDOW_S", Number(0, exclusive=True), "rate window in seconds"),
    Setting("batch_size", "CALSYNC_BATCH", Integer(1), "events claimed per statement"),
    Setting("lease_s", "CALSYNC_LEASE_S", Number(0, exclusive=True), "lease on a claimed event, seconds"),
    Setting(
        "max_attempts",
        "CALSYNC_MAX_ATTEMPTS",
        Integer(1),
        "attempts before an event is dead and its appointment flagged",
    ),
    Setting(
        "retry_base_s",
        "CALSYNC_RETRY_BASE_S",
        Number(0),
        "first retry delay; doubles per failed attempt (+-25%% jitter)",
    ),
    Setting("retry_cap_s", "CALSYNC_RETRY_CAP_S", Number(0), "longest retry delay"),
    Setting(
        "poll_interval_s",
        "CALSYNC_POLL_INTERVAL_S",
        Number(0, exclusive=True),
        "poll when no notification arrives, seconds",
    ),
    Setting(
        "request_timeout_s",
        "CALSYNC_REQUEST_TIMEOUT_S",
        Number(0, exclusive=True),
        "timeout of each HTTP request, seconds",
    ),
    Setting(
        "max_response_bytes",
        "CALSYNC_MAX_RESPONSE_BYTES",
        Integer(1024),
        "read at most this many bytes of a Cal.com answer (inflated); the rest is cut, its size recorded",
    ),
    Setting(
        "event_type_ttl_s",
        "CALSYNC_EVENT_TYPE_TTL_S",
        Number(0),
        "keep an event type's lengths this long before reading them again, seconds",
    ),
    Setting(
        "phone_region",
        "CALSYNC_PHONE_REGION",
        Region(),
        "country (ISO 3166 alpha-2) of national phone formats where calsync.company_settings names none",
    ),
    Setting(
        "key_probe_s",
        "CALSYNC_KEY_PROBE_S",
        Number(0, exclusive=True),
        "while the key or base URL is refused, check it again this often, seconds",
    ),
    Setting(
        "credentials_dir",
        "CALSYNC_CREDENTIALS_DIR",
        Directory(),
        "each company's own Cal.com key in DIR/<company_id>/calcom_api_key (mode 600; optional team id in "
        "calcom_team_id); companies without one use the fallback key",
    ),
    Setting(
        "credentials_ttl_s",
        "CALSYNC_CREDENTIALS_TTL_S",
        Number(0),
        "read a company's key file again after this long (added and rotated keys need no restart), seconds",
    ),
    Setting(
        "key_concurrency",
        "CALSYNC_KEY_CONCURRENCY",
        Integer(1),
        "appointments of one Cal.com key in flight at once in this worker (the rest of the worker serves the others)",
    ),
    Setting(
        "max_rate_wait_s",
        "CALSYNC_MAX_RATE_WAIT_S",
        Number(0, exclusive=True),
        "a request waits at most this long for its key's rate limit, else the event is given back, seconds",
    ),
    Setting(
        "shutdown_deadline_s",
        "CALSYNC_SHUTDOWN_DEADLINE_S",
        Number(0),
        "on SIGTERM, finish in-flight work for at most this long",
    ),
    Setting(
        "metrics_port", "CALSYNC_METRICS_PORT", Integer(0, 65535), "serve Prometheus metrics on 127.0.0.1:PORT (0: off)"
    ),
    Setting("worker_id", "CALSYNC_WORKER_ID", Text(), "this worker's id (leases, logs)"),
)


class MissingApiKey(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, Exit.USAGE)


def read_api_key() -> str:
    """CALCOM_API_KEY, else the file CALCOM_API_KEY_FILE, else the systemd credential calcom_api_key."""
    if key := os.environ.get("CALCOM_API_KEY", "").strip():
        return key
    named = os.environ.get("CALCOM_API_KEY_FILE", "").strip()
    path = named
    if not path and (creds := os.environ.get("CREDENTIALS_DIRECTORY")):
        path = str(Path(creds) / "calcom_api_key")
    if path and Path(path).is_file():
        # a systemd credential is the service's own copy (mode 0400 under $CREDENTIALS_DIRECTORY); a named file
        # must not be readable by others
        return read_secret_file(Path(path), check_mode=bool(named))
    if named:
        raise MissingApiKey(f"CALCOM_API_KEY_FILE={named!r} is not a file: set it to the file that holds the key")
    raise MissingApiKey(
        "no Cal.com API key: set CALCOM_API_KEY, CALCOM_API_KEY_FILE, or the systemd credential "
        "calcom_api_key (LoadCredential=calcom_api_key:/etc/calsync/calcom_api_key)"
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = WorkerSettings(database_url="", api_key="", worker_id="host:pid:random")
    p.add_argument("--database-url", default=None, help="PostgreSQL URL [env CALSYNC_DATABASE_URL, then DATABASE_URL]")
    for s in SETTINGS:
        default = getattr(d, s.name)
        shown = "off" if default is None else default
        p.add_argument(
            s.flag,
            default=None,
            metavar=s.name.upper(),
            help=f"{s.help}: {s.expected} [env {s.env}; default {shown}]",
        )
    p.add_argument("--once", action="store_true", help="drain what is due, then exit")
    p.epilog = (
        "The fallback API key comes from CALCOM_API_KEY, CALCOM_API_KEY_FILE or the systemd credential "
        "calcom_api_key; a company's own key from CALSYNC_CREDENTIALS_DIR/<company_id>/calcom_api_key. Keys are "
        "never logged or stored."
    )


def from_args(args: argparse.Namespace) -> WorkerSettings:
    """The settings from flags and environment, each checked, then the API key, then the database URL (checked,
    not connected to): a bad value stops here, before anything connects."""
    from worker.db import resolve_url

    values = {s.name: value for s in SETTINGS if (value := s.read(getattr(args, s.name, None))) is not None}
    try:
        api_key = read_api_key()
    except MissingApiKey:
        if values.get("credentials_dir") is None:
            raise
        api_key = ""  # every company brings its own key; one without is held and reported
    return WorkerSettings(database_url=resolve_url(args.database_url), api_key=api_key, once=args.once, **values)
