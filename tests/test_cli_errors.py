"""`calsync` fails in one line: a bad database URL, a database it cannot reach (refused, unknown host, wrong
password, no answer), a bad setting or an unsupported URL scheme is one line on stderr that names the setting and
what to do, with the documented exit code (worker/errors.py) and no traceback unless --debug asks for one.

Every case runs the real command line (`python -m worker …`) as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.executors import PostgreSQLExecutor

from tests.conftest import Db
from worker.db import check_url
from worker.errors import Exit, SettingError
from worker.resources import ROOT
from worker.sync.settings import SETTINGS

SETTING = {s.name: s for s in SETTINGS}
NOT_SET = ("DATABASE_URL", "PGCONNECT_TIMEOUT")


def calsync(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command line with a clean environment: no database URL (each test gives one), an API key."""
    ours = ("CALSYNC_", "CALCOM_")
    environment = {k: v for k, v in os.environ.items() if k not in NOT_SET and not k.startswith(ours)}
    environment.update({"CALCOM_API_KEY": "cal_test_calsync", **env})
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a failed command, after checking its exit code and that no traceback came out."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}: {proc.stderr}"
    return lines[0]


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the database URL ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("notaurl", "not a PostgreSQL URL"),
        ("http://db.example/salon", "not a PostgreSQL URL"),
        ("postgresql://calsync:secret@db.example:abc/salon", "port 'abc'"),
        ("postgresql://calsync:secret@[::1/salon", "IPv6"),
        ("postgresql://calsync@db.example/salon?nonsense=1", "nonsense"),
    ],
)
def test_malformed_database_url(url: str, problem: str) -> None:
    line = one_line(calsync("status", CALSYNC_DATABASE_URL=url), Exit.USAGE)
    assert line.startswith("calsync status: CALSYNC_DATABASE_URL=")
    assert problem in line and "--database-url" in line, line
    assert "secret" not in line, "the password is never printed"


def test_malformed_url_as_a_flag_names_the_flag() -> None:
    line = one_line(calsync("report", "--database-url", "postgres:/nohost"), Exit.USAGE)
    assert line.startswith("calsync report: --database-url='postgres:/nohost' is invalid")


# every command that takes a database URL, in the form that reaches the database
DATABASE_COMMANDS = [
    ["status"],
    ["report"],
    ["remediate", "--dry-run"],
    ["migrate"],
    ["migrate", "--preflight"],
    ["adopt"],
    ["generate"],
    ["worker", "--once"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_connection_refused(command: list[str], closed_port: int) -> None:
    url = f"postgresql://calsync:secret@127.0.0.1:{closed_port}/salon"
    line = one_line(calsync(*command, CALSYNC_DATABASE_URL=url), Exit.DATABASE_UNREACHABLE)
    assert line.startswith(f"calsync {command[0]}: cannot connect to the database (calsync@127.0.0.1:{closed_port}")
    assert "Connection refused" in line and "CALSYNC_DATABASE_URL" in line and "--database-url" in line
    assert "secret" not in line


def test_unknown_host() -> None:
    line = one_line(calsync("status", "--database-url", "postgresql://calsync@nohost.invalid/salon"), 3)
    assert "nohost.invalid" in line and "check the host name in --database-url" in line


def test_no_answer_is_a_bounded_timeout() -> None:
    """A server that accepts the TCP connection and never answers: the connect_timeout of the URL bounds the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        proc = calsync("worker", "--database-url", f"postgresql://calsync@127.0.0.1:{port}/salon?connect_timeout=2")
        elapsed = time.monotonic() - started
    line = one_line(proc, Exit.DATABASE_UNREACHABLE)
    assert "timeout" in line and "connect_timeout" in line, line
    assert elapsed < 30, f"took {elapsed:.0f} s"


def test_connect_timeout_is_added_unless_given() -> None:
    assert check_url("postgresql://u@h/db") == "postgresql://u@h/db?connect_timeout=10"
    assert check_url("postgresql://u@h/db?sslmode=require") == "postgresql://u@h/db?sslmode=require&connect_timeout=10"
    assert check_url("postgresql://u@h/db?connect_timeout=3") == "postgresql://u@h/db?connect_timeout=3"
    assert check_url("postgresql+psycopg://u@h/db?connect_timeout=3") == "postgresql://u@h/db?connect_timeout=3"
    with pytest.raises(SettingError, match="connect_timeout"):
        check_url("postgresql://u@h/db?connect_timeout=soon")


PROBE_ROLE = "calsync_password_probe"


@pytest.fixture
def password_role(postgresql_proc: PostgreSQLExecutor) -> Iterator[str]:
    """A role that must give its password. The test server trusts every local connection (pytest-postgresql's
    initdb --auth=trust), so this puts a scram-sha-256 line for this one role first in pg_hba.conf, reloads, and
    restores the file afterwards. Yields the role's URL with the wrong password."""
    admin = f"postgresql://{postgresql_proc.user}@{postgresql_proc.host}:{postgresql_proc.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {PROBE_ROLE} LOGIN PASSWORD 'right-password'")
        row = conn.execute("SHOW hba_file").fetchone()
        assert row is not None
        hba = Path(str(row[0]))
        original = hba.read_text()
        hba.write_text(f"host all {PROBE_ROLE} 127.0.0.1/32 scram-sha-256\n{original}")
        conn.execute("SELECT pg_reload_conf()")
    wrong = f"postgresql://{PROBE_ROLE}:wrong-password@{postgresql_proc.host}:{postgresql_proc.port}/postgres"
    try:
        deadline = time.monotonic() + 10
        while True:  # the postmaster reloads asynchronously: wait until the wrong password is refused
            try:
                psycopg.connect(wrong).close()
            except psycopg.OperationalError:
                break
            assert time.monotonic() < deadline, "pg_hba.conf reload did not take effect"
            time.sleep(0.1)
        yield wrong
    finally:
        hba.write_text(original)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP ROLE {PROBE_ROLE}")


@pytest.mark.parametrize("command", [["status"], ["migrate"], ["worker", "--once"]], ids=" ".join)
def test_wrong_password(command: list[str], password_role: str) -> None:
    line = one_line(calsync(*command, CALSYNC_DATABASE_URL=password_role), Exit.DATABASE_UNREACHABLE)
    assert f'password authentication failed for user "{PROBE_ROLE}"' in line
    assert "check the user and password in --database-url / CALSYNC_DATABASE_URL" in line
    assert "wrong-password" not in line


def test_database_not_at_head(fresh_db: Db) -> None:
    line = one_line(calsync("worker", "--once", "--database-url", fresh_db.url), Exit.NOT_AT_HEAD)
    assert "refusing to start" in line and "calsync migrate" in line
    line = one_line(calsync("status", "--database-url", fresh_db.url), Exit.NOT_AT_HEAD)
    assert "run `calsync migrate` first" in line


# -- settings --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "value", "flag"),
    [
        ("CALSYNC_MAX_ATTEMPTS", "abc", "--max-attempts"),
        ("CALSYNC_MAX_ATTEMPTS", "0", "--max-attempts"),
        ("CALSYNC_CONCURRENCY", "0", "--concurrency"),
        ("CALSYNC_CONCURRENCY", "2.5", "--concurrency"),
        ("CALSYNC_RATE_WINDOW_S", "fast", "--rate-window-s"),
        ("CALSYNC_LEASE_S", "nan", "--lease-s"),
        ("CALSYNC_POLL_INTERVAL_S", "0", "--poll-interval-s"),
        ("CALSYNC_RETRY_BASE_S", "-1", "--retry-base-s"),
        ("CALSYNC_METRICS_PORT", "70000", "--metrics-port"),
        ("CALCOM_BASE_URL", "ftp://x", "--base-url"),
        ("CALCOM_BASE_URL", "api.cal.com", "--base-url"),
    ],
)
def test_bad_worker_setting_in_the_environment(env: str, value: str, flag: str, closed_port: int) -> None:
    """Checked before anything connects: the database URL points at a closed port, which would be exit 3."""
    url = f"postgresql://calsync@127.0.0.1:{closed_port}/salon"
    line = one_line(calsync("worker", "--once", "--database-url", url, **{env: value}), Exit.USAGE)
    assert line.startswith(f"calsync worker: {env}={value!r} is invalid"), line
    assert f"set {env} (flag {flag}) to " in line


@pytest.mark.parametrize(
    ("flag", "value", "env"),
    [
        ("--concurrency", "0", "CALSYNC_CONCURRENCY"),
        ("--batch-size", "many", "CALSYNC_BATCH"),
        ("--request-timeout-s", "-5", "CALSYNC_REQUEST_TIMEOUT_S"),
        ("--base-url", "ftp://cal.example", "CALCOM_BASE_URL"),
    ],
)
def test_bad_worker_setting_as_a_flag(flag: str, value: str, env: str, closed_port: int) -> None:
    url = f"postgresql://calsync@127.0.0.1:{closed_port}/salon"
    line = one_line(calsync("worker", "--once", "--database-url", url, flag, value), Exit.USAGE)
    assert line.startswith(f"calsync worker: {flag}={value!r} is invalid"), line
    assert f"set {env} (flag {flag}) to " in line


def test_ftp_base_url_says_what_to_use() -> None:
    line = one_line(calsync("worker", "--once", CALCOM_BASE_URL="ftp://x"), Exit.USAGE)
    assert "not ftp" in line and "an http:// or https:// URL such as https://api.cal.com" in line


def test_missing_api_key(closed_port: int) -> None:
    proc = calsync("worker", "--once", "--database-url", f"postgresql://u@127.0.0.1:{closed_port}/x", CALCOM_API_KEY="")
    assert "CALCOM_API_KEY" in one_line(proc, Exit.USAGE)


@pytest.mark.parametrize(
    ("text", "base"),
    [
        ("https://api.cal.com", "https://api.cal.com"),
        ("https://api.cal.com/", "https://api.cal.com"),
        ("https://api.cal.com/v2", "https://api.cal.com"),  # as Cal.com's documentation gives it
        ("https://api.cal.com/v2/", "https://api.cal.com"),
        ("HTTP://127.0.0.1:5555", "http://127.0.0.1:5555"),
        ("https://proxy.example/calcom/v2", "https://proxy.example/calcom"),
    ],
)
def test_base_url_is_normalised_to_the_root(text: str, base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client appends /v2/bookings itself, so a base URL given with /v2 must not become /v2/v2/bookings."""
    assert SETTING["base_url"].read(text) == base
    monkeypatch.setenv("CALCOM_BASE_URL", text)
    assert SETTING["base_url"].read(None) == base


@pytest.mark.parametrize(
    "text", ["ftp://x", "api.cal.com", "https://", "https://key:secret@api.cal.com", "https://api.cal.com?x=1"]
)
def test_base_url_refused(text: str) -> None:
    with pytest.raises(SettingError, match="flag --base-url"):
        SETTING["base_url"].read(text)


def test_empty_environment_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALSYNC_METRICS_PORT", "")
    assert SETTING["metrics_port"].read(None) is None


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["generate", "--scale", "0"], {}, "--scale"),
        (["generate", "--anchor", "tomorrow"], {}, "--anchor"),
        (["remediate", "--undo", "last"], {}, "--undo"),
        (["migrate"], {"CALSYNC_LOCK_RETRIES": "x"}, "CALSYNC_LOCK_RETRIES"),
        (["migrate"], {"CALSYNC_LOCK_TIMEOUT": "soon"}, "CALSYNC_LOCK_TIMEOUT"),
        (["migrate"], {"CALSYNC_PREFLIGHT": "maybe"}, "CALSYNC_PREFLIGHT"),
        (["status", "--no-such-flag"], {}, "--no-such-flag"),
        (["db", "frobnicate"], {}, "frobnicate"),
        (["demo", "--frob"], {}, "--frob"),
        (["status"], {"CALSYNC_DEBUG": "perhaps"}, "CALSYNC_DEBUG"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_other_bad_settings(args: list[str], env: dict[str, str], named: str, closed_port: int) -> None:
    url = f"postgresql://calsync@127.0.0.1:{closed_port}/salon"
    line = one_line(calsync(*args, CALSYNC_DATABASE_URL=url, **env), Exit.USAGE)
    assert named in line


def test_simulator_bad_port() -> None:
    assert "port" in one_line(calsync("simulator", "--port", "70000"), Exit.USAGE)


# -- --debug ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "env"),
    [(["--debug", "status"], {}), (["status", "--debug"], {}), (["status"], {"CALSYNC_DEBUG": "1"})],
    ids=["global flag", "after the command", "CALSYNC_DEBUG=1"],
)
def test_debug_adds_the_traceback(args: list[str], env: dict[str, str], closed_port: int) -> None:
    url = f"postgresql://calsync@127.0.0.1:{closed_port}/salon"
    proc = calsync(*args, CALSYNC_DATABASE_URL=url, **env)
    assert proc.returncode == Exit.DATABASE_UNREACHABLE, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr and "psycopg.OperationalError" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("calsync status: cannot connect to the database")
