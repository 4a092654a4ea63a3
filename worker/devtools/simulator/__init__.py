"""A local simulator of the Cal.com API v2 booking endpoints the sync worker uses (see /work/shared/calcom-api.md).

A real HTTP server (aiohttp) with Cal.com's validation texts, both error body shapes, version routing, API-key
auth with users (whose keys see only their bookings), per-key throttling with a block, per-host overlap and
idempotency rules, Cal.com's booking rules (lengths, phones, e-mails, recurring event types, cancelling the past;
see `rules`), the event type and profile reads, and seeded fault injection. Admin routes under /_sim/ register
event types and users, inspect or reset the state, and make outside changes (an attendee or host rescheduling or
cancelling in Cal.com's own pages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.devtools.simulator.app import create_app
    from worker.devtools.simulator.config import SimulatorConfig
    from worker.devtools.simulator.server import SimulatorProcess, run

__all__ = ["SimulatorConfig", "SimulatorProcess", "create_app", "run"]
_HOME = {"create_app": "app", "SimulatorConfig": "config", "SimulatorProcess": "server", "run": "server"}


def __getattr__(name: str) -> Any:
    """Load on first use: `calsync --help` (which reads the simulator's flags from .config) must not pay for
    importing aiohttp and the server."""
    if name in _HOME:
        return getattr(importlib.import_module(f"worker.devtools.simulator.{_HOME[name]}"), name)
    raise AttributeError(name)
