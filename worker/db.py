"""Connections and the named-query loader.

SQL the Python code runs lives in ``sql/queries/*.sql`` as blocks that start with ``-- name: <name>``;
it is loaded once and looked up by name, so no SQL strings are scattered through the Python code.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from worker.errors import CliError, Exit, SettingError
from worker.resources import QUERIES_DIR

_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


class QueryNotFound(KeyError):
    pass


def parse_queries(text: str) -> dict[str, str]:
    """Split a file into its ``-- name:`` blocks (text before the first name is a file comment)."""
    parts = _NAME.split(text)
    out: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in out:
            raise ValueError(f"query {name!r} is defined twice")
        out[name] = body.strip() + "\n"
    return out


@functools.cache
def queries(directory: Path = QUERIES_DIR) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, body in parse_queries(path.read_text()).items():
            if name in out:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            out[name] = body
    return out


def query(name: str) -> str:
    try:
        return queries()[name]
    except KeyError:
        raise QueryNotFound(f"no query named {name!r} in {QUERIES_DIR}") from None


def libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs too (postgresql+psycopg://) and return a libpq one."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


CONNECT_TIMEOUT_S = 10  # what a URL without connect_timeout (and no PGCONNECT_TIMEOUT) waits for a connection
URL_SETTINGS = "--database-url / CALSYNC_DATABASE_URL (or DATABASE_URL)"
_URL_FORM = "a URL such as postgresql://calsync@db.example:5432/salon"


def given_url(explicit: str | None = None) -> tuple[str, str | None]:
    """Which setting names the database, and its value: --database-url, else CALSYNC_DATABASE_URL, else
    DATABASE_URL (empty counts as unset); ``(description, None)`` when none does and the embedded server is used."""
    if explicit:
        return "--database-url", explicit
    for env in ("CALSYNC_DATABASE_URL", "DATABASE_URL"):
        if value := os.environ.get(env, "").strip():
            return env, value
    return "the embedded server", None


def describe(explicit: str | None = None) -> str:
    """Where the database is, for error messages: ``user@host:port/dbname from SETTING`` (never the password)."""
    source, url = given_url(explicit)
    if url is None:
        return source
    try:
        info = conninfo_to_dict(libpq_url(url))
    except psycopg.Error:
        return f"from {source}"
    where = f"{info.get('host') or 'local socket'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
    return f"{info['user']}@{where} from {source}" if info.get("user") else f"{where} from {source}"


def check_url(url: str, source: str = "--database-url") -> str:
    """A usable libpq URL, or a SettingError naming `source`: the postgresql:// form (what migrations need too),
    parseable, with numeric ports; connect_timeout is added (CONNECT_TIMEOUT_S) unless it is set already."""
    url = libpq_url(url.strip())

    def bad(problem: str) -> SettingError:
        return SettingError(source=source, value=url, problem=problem, names=URL_SETTINGS, expected=_URL_FORM)

    if not url.startswith(("postgresql://", "postgres://")):
        raise bad("not a PostgreSQL URL (it must start with postgresql://)")
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error as e:
        raise bad(str(e).strip().splitlines()[0]) from None
    for port in str(info.get("port") or "").split(","):
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise bad(f"port {port!r} is not a number from 1 to 65535")
    timeout = str(info.get("connect_timeout", ""))
    if timeout and not timeout.isdigit():
        raise bad(f"connect_timeout {timeout!r} is not a whole number of seconds")
    if "connect_timeout" not in info and not os.environ.get("PGCONNECT_TIMEOUT"):
        url += ("&" if "?" in url else "?") + f"connect_timeout={CONNECT_TIMEOUT_S}"
    return url


def resolve_url(explicit: str | None = None) -> str:
    """--database-url, else CALSYNC_DATABASE_URL, else DATABASE_URL (checked by `check_url`), else the embedded
    server, started if needed."""
    source, url = given_url(explicit)
    if url is not None:
        return check_url(url, source)
    from worker.devtools.embedded import EmbeddedError, EmbeddedPostgres

    try:
        st = EmbeddedPostgres().start()
    except EmbeddedError as e:
        raise CliError(
            f"no database: {URL_SETTINGS} is not set and the embedded server cannot start: "
            f"{str(e).strip().splitlines()[0]}; set the URL, or see `calsync db start`",
            Exit.DATABASE_UNREACHABLE,
        ) from e
    return check_url(st.url, "the embedded server")


def connect(url: str, **kw: object) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(url), **kw)  # type: ignore[arg-type]
