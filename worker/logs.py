"""Structured logs: one JSON object per line on stdout (journald collects it), each with an ``event`` key.

Never a log file: a service may not be allowed to write one (the incident's log-permission failure).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, TextIO

_stream: TextIO = sys.stdout
_SECRET_KEYS = frozenset({"api_key", "authorization", "password"})


def set_stream(stream: TextIO) -> None:
    global _stream
    _stream = stream


def log(event: str, level: str = "info", **fields: Any) -> None:
    record = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "level": level, "event": event}
    for key, value in fields.items():
        record[key] = "[redacted]" if key.lower() in _SECRET_KEYS else value
    _stream.write(json.dumps(record, default=str) + "\n")
    _stream.flush()
