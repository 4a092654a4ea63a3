"""Where the project's non-Python parts are: ``sql/``, ``migrations/`` and ``alembic.ini``.

They are edited in one place, the top of the source tree. The wheel carries a copy of each inside the package
(``worker/_bundle/``, see ``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml), found here through
``importlib.resources``; a checkout (or an editable install) has no bundle and uses the tree itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLE = "_bundle"


def _root() -> Path:
    bundle = resources.files("worker").joinpath(BUNDLE)
    if bundle.is_dir():  # an installed wheel: a real directory in site-packages
        return Path(str(bundle))
    return Path(__file__).resolve().parent.parent  # the checkout


ROOT = _root()
INSTALLED = ROOT.name == BUNDLE
SQL_DIR = ROOT / "sql"
QUERIES_DIR = SQL_DIR / "queries"
MIGRATIONS_DIR = ROOT / "migrations"
ALEMBIC_INI = ROOT / "alembic.ini"
