"""`make demo` / `calsync demo`: a freshly migrated embedded database with demo data, summarised."""

from __future__ import annotations

import argparse
import time

import psycopg

from worker import datagen, migrate
from worker.db import connect, resolve_url
from worker.embedded import DEFAULT_DB, EmbeddedPostgres


def table(rows: list[tuple[str, object]], headers: tuple[str, str] = ("what", "count")) -> str:
    width = max(len(headers[0]), *(len(str(r[0])) for r in rows))
    nwidth = max(len(headers[1]), *(len(f"{r[1]:,}" if isinstance(r[1], int) else str(r[1])) for r in rows))
    line = f"+-{'-' * width}-+-{'-' * nwidth}-+"
    out = [line, f"| {headers[0]:<{width}} | {headers[1]:>{nwidth}} |", line]
    for what, n in rows:
        shown = f"{n:,}" if isinstance(n, int) else str(n)
        out.append(f"| {what!s:<{width}} | {shown:>{nwidth}} |")
    out.append(line)
    return "\n".join(out)


def fresh_database(emb: EmbeddedPostgres) -> str:
    st = emb.start()
    admin = st.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DEFAULT_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DEFAULT_DB}"')
    return st.url


def run(args: argparse.Namespace) -> int:
    emb = EmbeddedPostgres()
    url = resolve_url() if args.keep else fresh_database(emb)
    st = emb.state()
    print(f"== embedded PostgreSQL: {st.datadir if st else '?'} (calsync db url)")
    t0 = time.perf_counter()
    migrate.upgrade(url, "heads")
    print(f"== migrated to {sorted(migrate.current_heads(url))} in {time.perf_counter() - t0:.1f} s")
    with connect(url) as conn:
        if not args.keep:
            t0 = time.perf_counter()
            datagen.generate(conn, datagen.Params())
            print(f"== demo data loaded in {time.perf_counter() - t0:.1f} s")
        rows: list[tuple[str, object]] = list(datagen.summary(conn))
    print(table(rows))
    print('Connect with: psql "$(calsync db url)"')
    return 0
