"""Tell a running Cal.com simulator about the event types the database books with."""

from __future__ import annotations

from typing import Any

import httpx

from worker.db import connect, query


def event_types(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        rows = conn.execute(query("simulator_event_types").encode()).fetchall()
    seen: dict[int, dict[str, Any]] = {}
    for (et,) in rows:
        assert isinstance(et, dict)
        seen.setdefault(int(et["id"]), et)
    return list(seen.values())


def register(url: str, simulator_base_url: str) -> int:
    types = event_types(url)
    r = httpx.post(simulator_base_url.rstrip("/") + "/_sim/event-types", json=types, timeout=30)
    r.raise_for_status()
    return len(types)
