"""A local simulator of the Cal.com API v2 booking endpoints the sync worker uses (see /work/shared/calcom-api.md).

A real HTTP server (aiohttp) with Cal.com's validation texts, both error body shapes, version routing, API-key
auth, per-key rate limiting with a block, per-host overlap and idempotency rules, and seeded fault injection.
Admin routes under /_sim/ register event types and inspect or reset the state.
"""

from worker.devtools.simulator.app import create_app
from worker.devtools.simulator.config import SimulatorConfig
from worker.devtools.simulator.server import SimulatorProcess, run

__all__ = ["SimulatorConfig", "SimulatorProcess", "create_app", "run"]
