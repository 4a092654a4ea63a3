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


def resolve_url(explicit: str | None = None, *, start_embedded: bool = True) -> str:
    """--database-url, else CALSYNC_DATABASE_URL, else DATABASE_URL, else the embedded server."""
    url = explicit or os.environ.get("CALSYNC_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return libpq_url(url)
    from worker.devtools.embedded import EmbeddedPostgres

    emb = EmbeddedPostgres()
    st = emb.start() if start_embedded else emb.state()
    if st is None:
        raise SystemExit("calsync: no database: set CALSYNC_DATABASE_URL or run `calsync db start`")
    return st.url


def connect(url: str, **kw: object) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(url), **kw)  # type: ignore[arg-type]
