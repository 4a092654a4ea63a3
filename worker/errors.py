"""How `calsync` fails: one line on stderr that says what is wrong and what to do, a documented exit code, and a
traceback only when asked for (``--debug`` or ``CALSYNC_DEBUG=1``).

Commands raise `CliError` (a `SettingError` for a value they cannot use) or let the errors of the libraries they call
escape; `report`, called once by `worker.cli.main`, is the only place that turns an exception into that line.

Exit codes, the same for every command:

    0    success; `status`: HEALTHY
    1    the command failed, or found what it looks for: `status` DEGRADED, `migrate --preflight` rows that break a
         rule, `adopt` refused, the embedded server failed, a database error, an unexpected error
    2    a usage or setting error (a flag, an environment variable, a URL); also `status` CRITICAL and `migrate`
         refused by its pre-flight (both print their report on stdout/stderr; a usage error prints one line only)
    3    the database cannot be reached (connection refused, unknown host, authentication, timeout); also
         `db status`: the embedded server is not running
    4    the database is not at the revision this code needs (`worker` refuses to start; other commands find
         calsync's objects missing): run `calsync migrate`
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import enum
import os
import re
import sys
import traceback


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    DATABASE_UNREACHABLE = 3
    NOT_AT_HEAD = 4
    INTERRUPTED = 130


class CliError(Exception):
    """An error the command line reports as one line: `message` (without the ``calsync <command>:`` prefix)."""

    def __init__(self, message: str, exit_code: int = Exit.FAILED, *, prog: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = int(exit_code)
        self.prog = prog


class SettingError(CliError):
    """A value a setting cannot take: names where it came from, the environment variable and the flag, and what to
    give instead. Exit code 2."""

    def __init__(self, *, source: str, value: str, problem: str, names: str, expected: str) -> None:
        super().__init__(f"{source}={value!r} is invalid: {problem}; set {names} to {expected}", Exit.USAGE)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def debug_requested(argv: list[str]) -> bool:
    """``--debug`` anywhere on the command line, or ``CALSYNC_DEBUG`` set to 1/true/yes/on."""
    if "--debug" in argv:
        return True
    raw = os.environ.get("CALSYNC_DEBUG", "").strip().lower()
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    raise SettingError(
        source="CALSYNC_DEBUG", value=raw, problem="not a yes/no value", names="CALSYNC_DEBUG", expected="1 or 0"
    )


# -- turning an exception into the line -------------------------------------------------------------------------
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*):[^@/\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Passwords out of URLs and conninfo strings."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", text))


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


# SQLSTATE classes and codes of "could not connect", as opposed to an error of a statement
_CONNECTION_CLASSES = ("08", "28")  # connection exception, invalid authorization
_CONNECTION_CODES = frozenset({"3D000", "53300", "57P01", "57P02", "57P03"})  # no such database, too many, shutdown
_NOT_MIGRATED_CODES = frozenset({"3F000", "42P01", "42883"})  # no such schema, table, function


def _unreachable(message: str, database: str) -> CliError:
    """A connection failure: which database, why, and what to check (the setting that names it)."""
    reason = _first_line(message).removeprefix("connection failed: ")
    low = message.lower()
    names = "--database-url / CALSYNC_DATABASE_URL (or DATABASE_URL)"
    if (
        "password authentication failed" in low
        or "no password supplied" in low
        or ("role" in low and "does not exist" in low)
    ):
        todo = f"check the user and password in {names}"
    elif "database" in low and "does not exist" in low:
        todo = f"check the database name in {names}, or create it"
    elif "failed to resolve host" in low or "could not translate host name" in low:
        todo = f"check the host name in {names}"
    elif "timeout" in low or "timed out" in low or "pool initialization incomplete" in low:
        todo = (
            f"check the host, port and firewall in {names}; the wait is bounded by the URL's connect_timeout "
            "(10 s unless the URL or PGCONNECT_TIMEOUT sets it)"
        )
    elif "refused" in low or "no such file or directory" in low:
        todo = f"is PostgreSQL running there? Check the host and port in {names}"
    else:
        todo = f"check {names} and that the server accepts connections"
    return CliError(f"cannot connect to the database ({database}): {reason}; {todo}", Exit.DATABASE_UNREACHABLE)


def _from_database(exc: BaseException, database: str) -> CliError | None:
    import psycopg

    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's exception
    if isinstance(orig, psycopg.Error):
        exc = orig
    if not isinstance(exc, psycopg.Error):
        return None
    sqlstate = exc.sqlstate or ""
    diag = exc.diag
    message = diag.message_primary or _first_line(str(exc))
    if isinstance(exc, psycopg.OperationalError) and (
        not sqlstate or sqlstate[:2] in _CONNECTION_CLASSES or sqlstate in _CONNECTION_CODES
    ):
        return _unreachable(str(exc), database)
    if isinstance(exc, psycopg.InterfaceError | psycopg.ProgrammingError) and not sqlstate:
        return CliError(
            f"the database URL ({database}) cannot be used: {_first_line(str(exc))}; "
            "fix --database-url / CALSYNC_DATABASE_URL (a URL such as postgresql://calsync@db.example:5432/salon)",
            Exit.USAGE,
        )
    if sqlstate in _NOT_MIGRATED_CODES:
        return CliError(
            f"the database lacks calsync's objects ({message}): run `calsync migrate` first", Exit.NOT_AT_HEAD
        )
    hint = f"; {_first_line(diag.message_hint)}" if diag.message_hint else ""
    return CliError(f"database error {sqlstate}: {_first_line(message)}{hint}", Exit.FAILED)


def _known(exc: BaseException) -> CliError | None:
    """The project's own exceptions that carry a message for the operator (looked up only if their module is
    loaded: a command that never imported it cannot have raised it)."""
    embedded = sys.modules.get("worker.devtools.embedded")
    if embedded is not None and isinstance(exc, embedded.EmbeddedError):
        more = " (run with --debug for the server's output)" if len(str(exc).strip().splitlines()) > 1 else ""
        return CliError(f"embedded PostgreSQL: {_first_line(str(exc))}{more}", Exit.FAILED)
    return None


def classify(exc: BaseException, *, database: str) -> CliError:
    """The line and exit code for an exception. `database` says where the database URL came from."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return CliError("interrupted", Exit.INTERRUPTED)
    found = _known(exc) or _from_database(exc, database)
    if found is not None:
        return found
    if isinstance(exc, OSError):
        return CliError(_first_line(str(exc)) or type(exc).__name__, Exit.FAILED)
    return CliError(
        f"unexpected error: {type(exc).__name__}: {_first_line(str(exc))} (run with --debug for the traceback)",
        Exit.FAILED,
    )


def report(exc: BaseException, *, prog: str, database: str, debug: bool) -> int:
    """Print the traceback when `debug`, then the one line; return the exit code."""
    error = classify(exc, database=database)
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"{error.prog or prog}: {redact(error.message)}", file=sys.stderr, flush=True)
    return error.exit_code
