"""The embedded server behind `make demo` and `calsync db`: reachable, persistent, reused, cleanly stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from worker.devtools.embedded import EmbeddedPostgres, process_alive


def _alive(pid: int) -> bool:
    return process_alive(pid)


@pytest.fixture
def home() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="calsync-home-"))
    parent.chmod(0o755)  # like a project checkout: readable by the server's OS user
    emb_home = parent / ".calsync"
    try:
        yield emb_home
    finally:
        EmbeddedPostgres(emb_home).destroy()
        shutil.rmtree(parent, ignore_errors=True)


def test_start_reach_persist_reuse_stop(home: Path) -> None:
    emb = EmbeddedPostgres(home)
    st = emb.start()
    pid = emb.pid()
    assert pid and _alive(pid)
    with psycopg.connect(st.url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT current_database(), current_setting('server_version_num')::int / 10000"
        ).fetchone() == (
            "calsync",
            15,
        )
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    # a second start while running reuses the same server
    again = emb.start()
    assert (again.port, again.datadir, emb.pid()) == (st.port, st.datadir, pid)

    assert emb.stop() is True
    assert not _alive(pid), "stop left the postmaster running"
    assert not emb.running()
    assert emb.stop() is False

    # data persists across a restart; same data directory and credentials
    st2 = emb.start()
    assert st2.datadir == st.datadir and st2.password == st.password
    with psycopg.connect(st2.url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    new_pid = emb.pid()
    emb.stop()
    assert new_pid and not _alive(new_pid)
    assert (home / "server.json").stat().st_mode & 0o777 == 0o600, "the password file must be private"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another OS user")
def test_as_root_server_runs_unprivileged_and_parents_stay_closed() -> None:
    closed = Path(tempfile.mkdtemp(prefix="calsync-closed-"))  # mode 0700, like /root
    home = closed / "project" / ".calsync"
    emb = EmbeddedPostgres(home)
    try:
        st = emb.start()
        pid = emb.pid()
        assert pid
        owner = Path(f"/proc/{pid}").stat().st_uid
        assert owner != 0, "the postmaster must not run as root"
        assert (closed.stat().st_mode & 0o777) == 0o700, "a parent directory's permissions were loosened"
        assert (home / "pgdata").is_symlink(), "data must move outside when the server user cannot reach it"
        assert Path(st.datadir).resolve().is_relative_to("/var/lib/calsync")
        with psycopg.connect(st.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        emb.destroy()
        shutil.rmtree(closed, ignore_errors=True)


def test_cli_db_commands(home: Path) -> None:
    env = {**os.environ, "CALSYNC_HOME": str(home)}
    env.pop("CALSYNC_DATABASE_URL", None)

    def calsync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "worker", *args], env=env, capture_output=True, text=True)

    assert calsync("db", "url").returncode == 1  # never started: a clear error, not a traceback
    assert calsync("db", "start").returncode == 0
    url = calsync("db", "url").stdout.strip()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    status = calsync("db", "status", "--json")
    assert status.returncode == 0 and '"running": true' in status.stdout
    assert calsync("db", "stop").returncode == 0
    assert calsync("db", "status").returncode == 3
