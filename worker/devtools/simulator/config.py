"""Settings of the Cal.com API simulator, and their command-line form.

`add_arguments(parser)` / `config_from_args(args)` are what a CLI front end wires up; `config_to_args(config)` is
the inverse, used by `SimulatorProcess` to start the simulator as a child process. API keys never go on the
command line that `SimulatorProcess` builds: they travel in the `CALSYNC_SIMULATOR_API_KEYS` environment variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.devtools.simulator.model import EventType
from worker.devtools.simulator.webhooks import BOOKING_TRIGGERS, Subscription

API_KEYS_ENV = "CALSYNC_SIMULATOR_API_KEYS"
WEBHOOK_SECRET_ENV = "CALSYNC_SIMULATOR_WEBHOOK_SECRET"  # the secret of the --webhook subscribers
DEFAULT_API_KEYS: tuple[str, ...] = ("cal_test_calsync",)
DEFAULT_PORT = 5555  # the port Cal.com's own API v2 uses in development
DEFAULT_FALSE_NEGATIVE_MESSAGE = "An unexpected error occurred while creating the booking"

RATE_FIELDS = (
    "fail_5xx_rate",
    "timeout_rate",
    "reset_after_store_rate",
    "false_negative_rate",
    "malformed_rate",
    "conflict_rate",
)
WEBHOOK_RATE_FIELDS = ("webhook_drop_rate", "webhook_duplicate_rate", "webhook_reorder_rate")
# Fields that POST /_sim/config may change while the simulator runs.
RUNTIME_FIELDS = frozenset(
    {
        "api_keys",
        "rate_limit",
        "rate_limit_window_s",
        "rate_limit_block_s",
        "seed",
        "latency_ms",
        "timeout_hang_s",
        "false_negative_message",
        "clock_offset_s",
        "webhook_timeout_s",
        "webhook_delay_ms",
        "webhook_reorder_hold_s",
        *RATE_FIELDS,
        *WEBHOOK_RATE_FIELDS,
    }
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the simulator can be told. Rates are per-request probabilities in [0, 1] and must sum to ≤ 1."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_keys: tuple[str, ...] = DEFAULT_API_KEYS
    rate_limit: int = 120
    rate_limit_window_s: float = 60.0
    rate_limit_block_s: float = 60.0
    seed: int | None = None
    latency_ms: tuple[float, float] = (0.0, 0.0)
    fail_5xx_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_hang_s: float = 30.0
    reset_after_store_rate: float = 0.0
    false_negative_rate: float = 0.0
    false_negative_message: str = DEFAULT_FALSE_NEGATIVE_MESSAGE
    malformed_rate: float = 0.0
    conflict_rate: float = 0.0
    clock_offset_s: float = 0.0  # the simulator's "now" is the real time plus this (tests of the past)
    event_types: tuple[EventType, ...] = field(default=())
    # webhooks (delivery.py): subscribers, a timeout and queue bound per subscriber, delivery faults (rates of
    # one draw per delivery, summing to <= 1), an extra delay LOW:HIGH ms before each send
    webhooks: tuple[Subscription, ...] = field(default=())
    webhook_timeout_s: float = 5.0
    webhook_queue_size: int = 1000
    webhook_delay_ms: tuple[float, float] = (0.0, 0.0)
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_reorder_rate: float = 0.0
    webhook_reorder_hold_s: float = 1.0  # a held (reordered) delivery goes out after the next one, or after this

    def __post_init__(self) -> None:
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def __repr__(self) -> str:  # never show API keys
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "api_keys"}
        return f"SimulatorConfig(api_keys=<{len(self.api_keys)} keys>, {shown})"

    def updated(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """A copy with `changes` (JSON field names, as POST /_sim/config takes them) applied; ValueError if bad."""
        unknown = sorted(set(changes) - RUNTIME_FIELDS)
        if unknown:
            raise ValueError(f"fields that cannot be changed at runtime: {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            clean[name] = _coerce(name, value)
        return dataclasses.replace(self, **clean)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the API keys themselves."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "api_keys":
                out["api_key_count"] = len(value)
            elif f.name == "event_types":
                out[f.name] = [et.to_json() for et in value]
            elif f.name == "webhooks":
                out[f.name] = [w.to_json() for w in value]
            elif f.name in ("latency_ms", "webhook_delay_ms"):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out


def config_problems(c: SimulatorConfig) -> list[str]:
    problems = []
    for name in RATE_FIELDS:
        rate = getattr(c, name)
        if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
            problems.append(f"{name} must be a number between 0 and 1")
    if not problems and sum(getattr(c, n) for n in RATE_FIELDS) > 1.0 + 1e-9:
        problems.append("the fault rates must add up to at most 1")
    for name in WEBHOOK_RATE_FIELDS:
        rate = getattr(c, name)
        if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
            problems.append(f"{name} must be a number between 0 and 1")
    if not problems and sum(getattr(c, n) for n in WEBHOOK_RATE_FIELDS) > 1.0 + 1e-9:
        problems.append("the webhook fault rates must add up to at most 1")
    for name in ("latency_ms", "webhook_delay_ms"):
        low, high = getattr(c, name)
        if not (0 <= low <= high and math.isfinite(high)):
            problems.append(f"{name} must be LOW:HIGH with 0 <= LOW <= HIGH")
    if not (0 < c.webhook_timeout_s <= 300 and 1 <= c.webhook_queue_size <= 100_000 and c.webhook_reorder_hold_s >= 0):
        problems.append("webhook_timeout_s must be in (0, 300], webhook_queue_size in [1, 100000], hold >= 0")
    if not all(isinstance(w, Subscription) for w in c.webhooks):
        problems.append("webhooks must be Subscription objects (Subscription.from_json builds them)")
    if c.rate_limit < 1:
        problems.append("rate_limit must be at least 1")
    if c.rate_limit_window_s <= 0 or c.rate_limit_block_s < 0:
        problems.append("rate_limit_window_s must be > 0 and rate_limit_block_s >= 0")
    if not math.isfinite(c.clock_offset_s):
        problems.append("clock_offset_s must be a finite number of seconds")
    if c.timeout_hang_s < 0:
        problems.append("timeout_hang_s must be >= 0")
    if not c.api_keys or not all(isinstance(k, str) and k for k in c.api_keys):
        problems.append("api_keys must be a non-empty list of non-empty strings")
    if not all(isinstance(et, EventType) for et in c.event_types):
        problems.append("event_types must be EventType objects (EventType.from_json builds them)")
    if not 0 <= c.port <= 65535:
        problems.append("port must be between 0 and 65535")
    return problems


def _coerce(name: str, value: Any) -> Any:
    if name in ("latency_ms", "webhook_delay_ms"):
        if isinstance(value, str):
            return parse_latency(value)
        if isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(v) for v in value):
            return (float(value[0]), float(value[1]))
        raise ValueError(f"{name} must be [LOW, HIGH] or 'LOW:HIGH'")
    if name == "api_keys":
        if isinstance(value, list | tuple) and all(isinstance(k, str) for k in value):
            return tuple(value)
        raise ValueError("api_keys must be a list of strings")
    if name == "false_negative_message":
        if isinstance(value, str):
            return value
        raise ValueError("false_negative_message must be a string")
    if name in ("rate_limit", "seed"):
        if value is None and name == "seed":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be an integer")
    if _is_number(value):
        return float(value)
    raise ValueError(f"{name} must be a number")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def parse_latency(text: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    try:
        lo = float(low)
        hi = float(high) if sep else lo
    except ValueError:
        raise ValueError(f"latency must be LOW:HIGH in milliseconds, got {text!r}") from None
    return (lo, hi)


def parse_event_type(text: str) -> EventType:
    """`ID:LENGTH:HOST_USER_ID[:SLUG]`, e.g. `1:30:100:consultation`."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise ValueError(f"event type must be ID:LENGTH:HOST_USER_ID[:SLUG], got {text!r}")
    try:
        spec: dict[str, Any] = {"id": int(parts[0]), "lengthInMinutes": int(parts[1]), "hostUserId": int(parts[2])}
    except ValueError:
        raise ValueError(f"event type must be ID:LENGTH:HOST_USER_ID[:SLUG], got {text!r}") from None
    if len(parts) == 4:
        spec["slug"] = parts[3]
    return EventType.from_json(spec)


def _argtype(fn: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return fn(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(fn, "__name__", "value")
    return convert


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"rate must be between 0 and 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = SimulatorConfig()
    g = parser.add_argument_group("Cal.com simulator")
    g.add_argument("--host", default=d.host, help=f"address to bind [default {d.host}]")
    g.add_argument("--port", type=int, default=d.port, help=f"port to bind, 0 = any free port [default {d.port}]")
    g.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"a valid API key (repeatable) [env {API_KEYS_ENV}, comma-separated; default: the built-in test key]",
    )
    g.add_argument("--rate-limit", type=int, default=d.rate_limit, help="requests per window and key [120]")
    g.add_argument("--rate-limit-window-s", type=float, default=d.rate_limit_window_s, help="window length [60]")
    g.add_argument("--rate-limit-block-s", type=float, default=d.rate_limit_block_s, help="block after excess [60]")
    g.add_argument("--seed", type=int, default=None, help="seed of the fault and latency RNG")
    g.add_argument(
        "--latency-ms",
        type=_argtype(parse_latency),
        default=d.latency_ms,
        metavar="LOW:HIGH",
        help="uniform extra latency per /v2 booking request [0:0]",
    )
    rate = _argtype(_rate)
    g.add_argument(
        "--conflict-rate",
        type=rate,
        default=0.0,
        metavar="RATE",
        help="(create) answer the raw 409 booking_conflict_error of a lost race, nothing stored",
    )
    g.add_argument("--fail-5xx", type=rate, default=0.0, metavar="RATE", help="answer 500 (DB fault), nothing stored")
    g.add_argument("--timeout-rate", type=rate, default=0.0, metavar="RATE", help="process, then hang before answering")
    g.add_argument("--timeout-hang-s", type=float, default=d.timeout_hang_s, help="how long a timeout fault hangs [30]")
    g.add_argument(
        "--reset-after-store", type=rate, default=0.0, metavar="RATE", help="create: store, then reset the connection"
    )
    g.add_argument(
        "--false-negative-rate", type=rate, default=0.0, metavar="RATE", help="create: store, then answer 400"
    )
    g.add_argument("--false-negative-message", default=d.false_negative_message, help="message of that 400")
    g.add_argument("--malformed-rate", type=rate, default=0.0, metavar="RATE", help="answer 2xx with a non-JSON body")
    g.add_argument(
        "--clock-offset-s",
        type=float,
        default=d.clock_offset_s,
        help="seconds added to the real time: the simulator's now, for tests of past bookings [0]",
    )
    g.add_argument(
        "--webhook",
        action="append",
        dest="webhooks",
        metavar="URL",
        help=f"a webhook subscriber for the booking triggers (repeatable; secret from env {WEBHOOK_SECRET_ENV}, "
        "none: no-secret-provided); more via POST /_sim/webhooks",
    )
    g.add_argument("--webhook-timeout-s", type=float, default=d.webhook_timeout_s, help="per delivery [5]")
    g.add_argument("--webhook-queue-size", type=int, default=d.webhook_queue_size, help="per subscriber [1000]")
    g.add_argument(
        "--webhook-delay-ms",
        type=_argtype(parse_latency),
        default=d.webhook_delay_ms,
        metavar="LOW:HIGH",
        help="uniform delay before each webhook delivery [0:0]",
    )
    g.add_argument("--webhook-drop-rate", type=rate, default=0.0, metavar="RATE", help="deliveries never sent")
    g.add_argument("--webhook-duplicate-rate", type=rate, default=0.0, metavar="RATE", help="deliveries sent twice")
    g.add_argument(
        "--webhook-reorder-rate", type=rate, default=0.0, metavar="RATE", help="deliveries sent after the next one"
    )
    g.add_argument("--webhook-reorder-hold-s", type=float, default=d.webhook_reorder_hold_s, help="longest hold [1]")
    g.add_argument(
        "--event-type",
        action="append",
        dest="event_types",
        type=_argtype(parse_event_type),
        metavar="ID:LENGTH:HOST[:SLUG]",
        help="register an event type at start (repeatable); more via POST /_sim/event-types",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    keys: tuple[str, ...]
    if args.api_keys:
        keys = tuple(args.api_keys)
    elif env := os.environ.get(API_KEYS_ENV):
        keys = tuple(k.strip() for k in env.split(",") if k.strip())
    else:
        keys = DEFAULT_API_KEYS
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        api_keys=keys,
        rate_limit=args.rate_limit,
        rate_limit_window_s=args.rate_limit_window_s,
        rate_limit_block_s=args.rate_limit_block_s,
        seed=args.seed,
        latency_ms=args.latency_ms,
        fail_5xx_rate=args.fail_5xx,
        timeout_rate=args.timeout_rate,
        timeout_hang_s=args.timeout_hang_s,
        reset_after_store_rate=args.reset_after_store,
        false_negative_rate=args.false_negative_rate,
        false_negative_message=args.false_negative_message,
        malformed_rate=args.malformed_rate,
        conflict_rate=args.conflict_rate,
        clock_offset_s=args.clock_offset_s,
        event_types=tuple(args.event_types or ()),
        webhooks=_cli_webhooks(args.webhooks or ()),
        webhook_timeout_s=args.webhook_timeout_s,
        webhook_queue_size=args.webhook_queue_size,
        webhook_delay_ms=args.webhook_delay_ms,
        webhook_drop_rate=args.webhook_drop_rate,
        webhook_duplicate_rate=args.webhook_duplicate_rate,
        webhook_reorder_rate=args.webhook_reorder_rate,
        webhook_reorder_hold_s=args.webhook_reorder_hold_s,
    )


def _cli_webhooks(urls: Any) -> tuple[Subscription, ...]:
    secret = os.environ.get(WEBHOOK_SECRET_ENV) or None
    spec = {"triggers": list(BOOKING_TRIGGERS), "secret": secret}
    return tuple(Subscription.from_json({**spec, "subscriberUrl": u}, f"cli-{i}") for i, u in enumerate(urls, 1))


def config_to_args(c: SimulatorConfig) -> list[str]:
    """Command-line flags for `c`, except the API keys (pass those in `API_KEYS_ENV`), the event types and the
    webhook subscribers (their secrets stay off the command line too).

    Event types carry more than `--event-type` can say (titles, host names): `SimulatorProcess` registers them
    through POST /_sim/event-types once the process answers.
    """
    args = [
        f"--host={c.host}",
        f"--port={c.port}",
        f"--rate-limit={c.rate_limit}",
        f"--rate-limit-window-s={c.rate_limit_window_s}",
        f"--rate-limit-block-s={c.rate_limit_block_s}",
        f"--latency-ms={c.latency_ms[0]}:{c.latency_ms[1]}",
        f"--fail-5xx={c.fail_5xx_rate}",
        f"--timeout-rate={c.timeout_rate}",
        f"--timeout-hang-s={c.timeout_hang_s}",
        f"--reset-after-store={c.reset_after_store_rate}",
        f"--false-negative-rate={c.false_negative_rate}",
        f"--false-negative-message={c.false_negative_message}",
        f"--malformed-rate={c.malformed_rate}",
        f"--conflict-rate={c.conflict_rate}",
        f"--clock-offset-s={c.clock_offset_s}",
        f"--webhook-timeout-s={c.webhook_timeout_s}",
        f"--webhook-queue-size={c.webhook_queue_size}",
        f"--webhook-delay-ms={c.webhook_delay_ms[0]}:{c.webhook_delay_ms[1]}",
        f"--webhook-drop-rate={c.webhook_drop_rate}",
        f"--webhook-duplicate-rate={c.webhook_duplicate_rate}",
        f"--webhook-reorder-rate={c.webhook_reorder_rate}",
        f"--webhook-reorder-hold-s={c.webhook_reorder_hold_s}",
    ]
    if c.seed is not None:
        args.append(f"--seed={c.seed}")
    return args
