"""The wheel: built from this tree and installed into a fresh virtual environment outside the checkout, it migrates
an empty database, reports its status and syncs a booking to the simulator, with nothing of the checkout on its
path. The SQL and the migrations come from the copy the wheel carries (``worker/_bundle/``)."""

from __future__ import annotations

import ast
import compileall
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TESTS, Db
from tests.worker_support import API_KEY, NO_FAULTS, appointment, book, simulator
from worker import resources
from worker.db import queries
from worker.devtools import simsetup
from worker.devtools.simulator import SimulatorProcess
from worker.ops import migrate

__all__ = ["simulator"]  # fixtures

CHECKOUT = TESTS.parent
BUNDLED = ("sql", "migrations", "alembic.ini")  # what the wheel carries under worker/_bundle/
CACHES = ("__pycache__", ".pyc", ".pyo", ".mypy_cache", ".ruff_cache", ".pytest_cache")
# Leave the checkout's environment behind: the installed package must find everything by itself.
NOT_INHERITED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "UV_PROJECT_ENVIRONMENT", "CONDA_PREFIX")


def uv() -> str:
    """The Makefile's uv: on the PATH, else the pinned one in .tools/."""
    found = shutil.which("uv") or next((str(p) for p in [CHECKOUT / ".tools" / "bin" / "uv"] if p.exists()), None)
    if found is None:
        pytest.fail("uv is neither on the PATH nor in .tools/bin: run `make env`")
    return found


def run_uv(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}  # keeps HOME, so uv's cache is used
    proc = subprocess.run(
        [uv(), *args],
        cwd=cwd,
        env={**env, "UV_PYTHON_DOWNLOADS": "never"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"uv {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@dataclass(frozen=True)
class Installed:
    """The wheel installed into its own virtual environment; commands run there with a bare environment."""

    wheel: Path
    venv: Path
    home: Path

    @property
    def site_packages(self) -> Path:
        return self.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"

    @property
    def bundle(self) -> Path:
        return self.site_packages / "worker" / "_bundle"

    def run(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "CALSYNC_HOME": str(self.home / ".calsync"),
            "LANG": "C.UTF-8",
            **(env or {}),
        }
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            cwd=self.home,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def calsync(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("calsync", *argv, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel once per module and install it, with the locked versions of its dependencies, into a fresh
    virtual environment outside the checkout."""
    # What a development tree has (unless PYTHONDONTWRITEBYTECODE is set), and what the wheel must leave out.
    compileall.compile_dir(str(CHECKOUT / "migrations"), quiet=1)
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(CHECKOUT), "the virtual environment must live outside the checkout"
    run_uv("build", "--wheel", "--out-dir", str(base / "dist"), cwd=CHECKOUT)
    [wheel] = (base / "dist").glob("calsync-*.whl")
    constraints = base / "constraints.txt"
    constraints.write_text(
        run_uv("export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--quiet", cwd=CHECKOUT)
    )
    venv = base / "venv"
    run_uv("venv", "--quiet", "--python", sys.executable, str(venv), cwd=base)
    run_uv(
        "pip",
        "install",
        "--quiet",
        "--python",
        str(venv / "bin" / "python"),
        "-c",
        str(constraints),
        str(wheel),
        cwd=base,
    )
    home = base / "home"
    home.mkdir()
    yield Installed(wheel, venv, home)


def bundled_names(root: Path) -> set[str]:
    """The files of ``sql/``, ``migrations/`` and ``alembic.ini`` under ``root``, caches left out."""
    names: set[str] = set()
    for top in BUNDLED:
        path = root / top
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        names |= {p.relative_to(root).as_posix() for p in files if not any(c in p.as_posix() for c in CACHES)}
    return names


def test_the_wheel_carries_sql_migrations_and_alembic_ini_without_caches(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
    in_bundle = {n.removeprefix("worker/_bundle/") for n in names if n.startswith("worker/_bundle/")}
    assert in_bundle == bundled_names(CHECKOUT), "the bundle is exactly the tree's sql/, migrations/ and alembic.ini"
    assert any(n.endswith(".sql") for n in in_bundle if n.startswith("migrations/versions/")), "frozen SQL included"
    assert not [n for n in names if any(c in n for c in CACHES)], "no caches in the wheel"
    assert any("__pycache__" in p.parts for p in (CHECKOUT / "migrations").rglob("*")), "the tree had caches to skip"
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"worker", f"{installed.wheel.name.split('-py')[0]}.dist-info"}, "nothing at the top but worker"


def test_the_installed_package_is_the_venvs_and_reads_its_bundle(installed: Installed) -> None:
    probe = """
import json, sys
import worker, worker.db
from worker import resources
from worker.ops import migrate
script = migrate.script()
revisions = [r.revision for r in script.walk_revisions("base", "heads")]  # imports every revision module
import migrations, migrations.online
print(json.dumps({
    "prefix": sys.prefix,
    "worker": worker.__file__,
    "root": str(resources.ROOT),
    "installed": resources.INSTALLED,
    "paths": [str(resources.SQL_DIR), str(resources.QUERIES_DIR), str(resources.MIGRATIONS_DIR),
              str(resources.ALEMBIC_INI), script.dir, *script.version_locations],
    "migrations": [migrations.__file__, migrations.online.__file__],
    "queries": len(worker.db.queries()),
    "revisions": revisions,
    "sys_path": sys.path,
}))
"""
    proc = installed.run("python", "-c", probe)
    assert proc.returncode == 0, proc.stderr
    got: dict[str, Any] = json.loads(proc.stdout)
    site = installed.site_packages.resolve()
    assert Path(got["prefix"]).resolve() == installed.venv.resolve()
    assert Path(got["worker"]).resolve() == site / "worker" / "__init__.py", "worker is the venv's"
    assert Path(got["root"]).resolve() == installed.bundle.resolve() and got["installed"] is True
    for path in [*got["paths"], *got["migrations"]]:
        assert Path(path).resolve().is_relative_to(installed.bundle.resolve()), f"{path} is not in the bundle"
    assert got["queries"] == len(queries()), "every named query is found in the bundle"
    assert set(got["revisions"]) == {r.revision for r in migrate.script().walk_revisions("base", "heads")}
    assert not [p for p in got["sys_path"] if p and Path(p).resolve().is_relative_to(CHECKOUT)], "no checkout path"


def test_the_checkout_and_its_editable_install_read_the_tree() -> None:
    """The development install (uv sync: editable) has no bundle of its own: the tree is the one copy. (An editable
    build copies the bundle into site-packages' worker/ as well, but the checkout's package is the one imported.)"""
    assert resources.ROOT == CHECKOUT and resources.INSTALLED is False
    assert resources.MIGRATIONS_DIR == CHECKOUT / "migrations" and resources.SQL_DIR == CHECKOUT / "sql"
    assert Path(migrate.script().dir).resolve() == CHECKOUT / "migrations"
    direct_url = importlib.metadata.distribution("calsync").read_text("direct_url.json")
    if direct_url is not None and json.loads(direct_url).get("dir_info", {}).get("editable"):
        import worker

        assert Path(worker.__file__ or "").resolve().is_relative_to(CHECKOUT), "the editable install imports the tree"


def test_alembic_config_refuses_a_foreign_migrations_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    migrate.alembic_config()  # ours, or none yet: fine
    foreign = types.ModuleType("migrations")
    foreign.__path__ = [str(tmp_path / "migrations")]
    monkeypatch.setitem(sys.modules, "migrations", foreign)
    with pytest.raises(migrate.ForeignMigrationsPackage, match="different `migrations` package"):
        migrate.alembic_config()


def test_nothing_under_migrations_imports_worker() -> None:
    """Revisions are frozen: they may not depend on the application's code, which keeps changing."""
    offenders = []
    for path in sorted((CHECKOUT / "migrations").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.relative_to(CHECKOUT)}: {n}" for n in names if n.split(".")[0] == "worker"]
    assert not offenders


def test_installed_calsync_migrates_reports_and_syncs_a_booking(
    installed: Installed, fresh_db: Db, simulator: SimulatorProcess
) -> None:
    env = {"CALSYNC_DATABASE_URL": fresh_db.url}
    migrated = installed.calsync("migrate", **env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrate.current_heads(fresh_db.url) == migrate.code_heads(), "the installed calsync migrated to head"

    with fresh_db.connect() as conn:  # the test factories, then a salon and one booking
        conn.execute((TESTS / "sql" / "helpers.sql").read_text())
        row = conn.execute("SELECT tests.make_salon()").fetchone()
        conn.commit()
    assert row is not None
    salon: dict[str, Any] = dict(row[0])  # type: ignore[call-overload]
    simulator.reset(event_types=True)
    simulator.set_config(**NO_FAULTS, rate_limit=1_000_000, latency_ms=[0, 0])
    simsetup.register(fresh_db.url, simulator.base_url)
    a = book(fresh_db, salon)

    before = status(installed, env)
    assert before["pending"] == 1, before

    worker = installed.calsync(
        "worker",
        "--once",
        **env,
        CALCOM_BASE_URL=simulator.base_url,
        CALCOM_API_KEY=API_KEY,
        CALSYNC_POLL_INTERVAL_S="0.2",
        CALSYNC_REQUEST_TIMEOUT_S="5",
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    [booking] = simulator.bookings("calsync_appointment_id", str(a))
    row_after = appointment(fresh_db, a)
    assert (row_after["calcom_sync_status"], row_after["calcom_v2_booking_uid"]) == ("synced", booking["uid"])

    after = status(installed, env)
    assert (after["health"], after["pending"], after["failed"]) == ("HEALTHY", 0, 0), after


def status(installed: Installed, env: dict[str, str]) -> dict[str, Any]:
    proc = installed.calsync("status", "--json", **env)
    assert proc.returncode in (0, 1, 2), proc.stderr
    health: dict[str, Any] = json.loads(proc.stdout)
    assert health["health"] in ("HEALTHY", "DEGRADED", "CRITICAL")
    assert proc.returncode == {"HEALTHY": 0, "DEGRADED": 1}.get(health["health"], 2), "exit code follows health"
    return health
