"""Chaos soak (make soak; excluded from make test): 2,000 appointments, a faulty Cal.com that keeps Cal.com's real
rules, a worker killed and restarted every few seconds, and people changing bookings at Cal.com meanwhile.

Faults: 20 % 5xx, 10 % timeouts (the simulator hangs 1.5 s after doing the work; the worker gives up after
1 s), 5 % connection resets after the booking was stored, 3 % false-negative 400s after storing. The rate limit
is raised for the run. During the run some appointments are cancelled and some moved by the salon.

Cal.com as it is (calcom-api.md §8):
- Event type lengths: the salon's event types are registered again with lengths that are not simply the
  phases'. The cut (8001, 30 min) is multi-length with a 60-minute default; of the Dauerwelle's phase event
  types (A 50, B 5, C 15, D 40 staff-required) some are fixed at exactly the phase's length and some are
  multi-length with another default (so a move is cancel + create, never a reschedule to the default). A
  45-minute blow-dry (8004) is fixed at 45. A 20-minute beard trim (8003) offers no 20 minutes: its few
  appointments (in a band of their own) must end dead with EVENT_TYPE_LENGTH and nothing booked.
- Contacts: some customers have only a phone (E.164 or national "030 …"), others an e-mail and a national phone
  ("0171 …"; CALSYNC_CHAOS_NATIONAL_PHONES=0 makes those E.164). Phone-only customers are booked only on event
  types whose e-mail is optional and phone required (the cut and Mia's phases), as Cal.com insists.
- Outside changes: a background thread, while the worker is being killed, takes synced bookings (no event of
  theirs in the outbox) and has the attendee or the host reschedule them (a cut within its own slot, anything
  else into a band reserved for it, so no host is ever double-booked) or cancel them. Some of those
  appointments the salon then moves (two years ahead: a slot nobody else has) or cancels, a few seconds later.

The expected end state (no webhooks yet, so the salon does not learn of outside changes):
- an appointment the salon cancelled: no live booking, whatever happened at Cal.com;
- one the salon moved after the outside change: the worker acted on the successor (reschedule) or booked it
  again (after an outside cancel: the salon's later change is the newer word): exactly its interval;
- an outside reschedule the salon never followed up: the booking legitimately sits at the new time ("drift
  left for reconciliation"): exactly one live booking, at the time the attendee or host chose;
- an outside cancel the salon never followed up: no live booking, the appointment still "synced": nothing
  re-creates a booking Cal.com's user cancelled (that would fight the customer; the webhook receiver is to
  bring it to the salon) ("outside cancels left for reconciliation");
- every other live unit: exactly one live booking of exactly the unit's interval, whose uid the salon knows.
No live booking at Cal.com may be for a cancelled or unknown appointment (orphans), nothing is dead but the beard
trims (EVENT_TYPE_LENGTH), nothing else is left in the outbox and no worker logged an error.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import signal
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Db
from tests.worker_support import WorkerProcess, active, meta, salon, sim, simulator, worker_process
from worker.devtools.simulator import SimulatorProcess

__all__ = ["salon", "sim", "simulator"]

N = int(os.environ.get("CALSYNC_CHAOS_APPOINTMENTS", "2000"))
KILL_FOR_S = float(os.environ.get("CALSYNC_CHAOS_KILL_FOR_S", "60"))
# one seed for the schedule, the outside changes and the simulator's faults; another explores other interleavings
SEED = int(os.environ.get("CALSYNC_CHAOS_SEED", "2026"))
NATIONAL_PHONES = os.environ.get("CALSYNC_CHAOS_NATIONAL_PHONES", "1").lower() not in ("0", "", "off", "false", "no")
T0 = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)

SLOT = 150  # minutes of one staff member's slot; Mia's start 75 minutes after Lena's
SPAN = dt.timedelta(minutes=SLOT * ((N + 1) // 2))
YEAR = dt.timedelta(days=365)  # the salon's moves shift by whole years: every shifted slot is still its own
SALON_MOVE = 2 * YEAR  # a salon move after an outside change (the run's other moves are one year)
IMPOSSIBLE_AT = T0 + YEAR + SPAN + dt.timedelta(days=1)  # the beard trims, an hour apart
OUTSIDE_AT = IMPOSSIBLE_AT + dt.timedelta(days=2)  # the band for outside reschedules, an hour each
IMPOSSIBLE = max(3, N // 200)
OUTSIDE = max(10, N // 20)  # outside changes to inject
assert dt.timedelta(days=300) > SPAN, "the bands need the schedule to fit in well under a year"

# event type: (default length, the other lengths it offers; none: fixed), what the booking form asks
CUT, BEARD, BLOWDRY = 8001, 8003, 8004
PHONE_ONLY_OK = {"emailRequired": False, "phoneField": "required"}
EVENT_TYPES: dict[int, tuple[int, list[int], dict[str, Any]]] = {
    CUT: (60, [30, 60, 90], PHONE_ONLY_OK),  # multi-length, default not the cut's 30
    BEARD: (25, [15, 25, 45], {}),  # no 20 minutes: impossible
    BLOWDRY: (45, [], {}),  # fixed, exactly the service
    # Lena (Cal.com user 7001): A fixed, B multi, C fixed, D multi; e-mail required, phone shown (checked)
    8211: (50, [], {}),
    8221: (15, [5, 15, 30], {}),
    8231: (15, [], {}),
    8241: (60, [40, 60], {}),
    # Mia (7002): A multi, B fixed, C multi, D fixed; e-mail optional, phone required
    8212: (30, [30, 50, 90], PHONE_ONLY_OK),
    8222: (5, [], PHONE_ONLY_OK),
    8232: (30, [15, 30], PHONE_ONLY_OK),
    8242: (40, [], PHONE_ONLY_OK),
}


def _event_types(sim: SimulatorProcess) -> None:
    """The salon's event types again (as the sim fixture registered them, host and title kept) with the lengths
    and booking forms above, plus the two extra services' own."""
    known = {int(et["id"]): et for et in sim.admin("GET", "/_sim/event-types")["eventTypes"]}
    out = []
    for et_id, (length, options, form) in EVENT_TYPES.items():
        base = known.get(et_id) or {"id": et_id, "hostUserId": et_id, "title": f"ET {et_id}"}
        assert et_id in known or et_id in (BEARD, BLOWDRY), f"the salon has no event type {et_id}"
        out.append({**base, "lengthInMinutes": length, "lengthInMinutesOptions": options, **form})
    sim.register_event_types(out)


@dataclass
class Customers:
    with_email: list[int]
    phone_only: list[int]
    kinds: Counter[str]


def _customers(conn: Any, company: int) -> Customers:
    """N/4 customers: a tenth phone-only in E.164, a tenth phone-only national, a tenth with an e-mail and a
    national phone, the rest an e-mail and an E.164 phone."""
    result = Customers([], [], Counter())
    for i in range(max(10, N // 4)):
        email: str | None = f"kunde{i}@mail.example"
        phone, kind = "+4915112345678", "email+e164"
        if i % 10 == 0:
            email, phone, kind = None, f"+49151{20000000 + i:08d}", "phone-only e164"
        elif i % 10 == 1:
            email, phone, kind = None, f"030 {2000000 + i}", "phone-only national"
        elif i % 10 == 2:
            phone, kind = f"0171 {2000000 + i}", "email+national"
        if not NATIONAL_PHONES and "national" in kind:
            phone, kind = f"+49151{30000000 + i:08d}", kind.replace("national", "e164")
        row = conn.execute("SELECT tests.make_customer(%s, %s, %s, %s)", [company, f"Kunde {i}", email, phone])
        customer = int(row.fetchone()[0])
        (result.with_email if email else result.phone_only).append(customer)
        result.kinds[kind] += 1
    return result


def _schedule(db: Db, salon: dict[str, Any]) -> tuple[list[int], list[int], Counter[str]]:
    """N appointments, 20 % Dauerwelle, 10 % blow-dry, the rest cuts, alternating staff on 150-minute slots (staff
    two starts 75 minutes later), so neither our rules nor the simulator's per-host calendar see an overlap; and
    the beard trims (which no event type length fits) in a band of their own. Phone-only customers only where
    every event type of the appointment takes them."""
    rng = random.Random(11 + SEED - 2026)  # the default seed keeps the schedule the soak has always had
    ids, impossible = [], []
    with db.connect() as conn:
        customers = _customers(conn, salon["company"])
        services = {}
        for name, minutes, event_type in (("Föhnen", 45, BLOWDRY), ("Bart", 20, BEARD)):
            row = conn.execute(
                "INSERT INTO services (company_id, name, duration_minutes, calcom_event_type_id) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                [salon["company"], name, minutes, event_type],
            ).fetchone()
            assert row is not None
            services[event_type] = row[0]
        everyone = customers.with_email + customers.phone_only
        for i in range(N):
            staff = "lena" if i % 2 == 0 else "mia"
            start = T0 + dt.timedelta(minutes=SLOT * (i // 2) + (75 if staff == "mia" else 0))
            r = rng.random()
            service = salon["perm"] if r < 0.2 else services[BLOWDRY] if r < 0.3 else salon["cut"]
            phone_ok = service == salon["cut"] or (service == salon["perm"] and staff == "mia")
            pool = everyone if phone_ok else customers.with_email
            row = conn.execute(
                "SELECT tests.make_appointment(%s, %s, %s, %s)", [rng.choice(pool), service, salon[staff], start]
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        for k in range(IMPOSSIBLE):
            row = conn.execute(
                "SELECT tests.make_appointment(%s, %s, %s, %s)",
                [customers.with_email[k], services[BEARD], salon["lena"], IMPOSSIBLE_AT + dt.timedelta(hours=k)],
            ).fetchone()
            assert row is not None
            impossible.append(int(row[0]))
        conn.commit()
    return ids, impossible, customers.kinds


def _meddle(db: Db, ids: list[int]) -> None:
    """While the worker runs: cancel every 10th appointment and move every 15th a year ahead."""
    with db.connect() as conn:
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = ANY(%s)", [ids[::10]])
        conn.execute(
            "UPDATE appointments SET starts_at = starts_at + interval '365 days', "
            "ends_at = ends_at + interval '365 days' WHERE id = ANY(%s) AND status <> 'cancelled'",
            [ids[5::15]],
        )
        conn.commit()


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _key(booking: dict[str, Any]) -> str:
    m = booking.get("metadata") or {}
    return f"{m.get('calsync_appointment_id')}:{m.get('calsync_phase_id') or ''}"


EXPECTED_SQL = """
    SELECT a.id, coalesce(p.id::text, ''), coalesce(p.start_time, a.starts_at), coalesce(p.end_time, a.ends_at),
           CASE WHEN p.id IS NULL THEN a.calcom_v2_booking_uid ELSE p.calcom_booking_uid END
    FROM appointments a LEFT JOIN appointment_phases p ON p.appointment_id = a.id AND p.staff_required
    WHERE a.status <> 'cancelled' AND (NOT a.is_composite OR p.id IS NOT NULL) AND a.id = ANY(%s)"""


def _expected(db: Db, ids: list[int]) -> dict[str, tuple[dt.datetime, dt.datetime, str | None]]:
    """Each staff-required unit of a live appointment: its interval and the booking uid the salon knows."""
    with db.connect() as conn:
        rows = conn.execute(EXPECTED_SQL, [ids]).fetchall()
    return {f"{a}:{p}": (_utc(s), _utc(e), uid) for a, p, s, e, uid in rows}


def _pending(db: Db) -> int:
    """Events still to deliver: the outbox without the events of dead appointments (those stay, for a person)."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM calsync.outbox o WHERE NOT EXISTS (SELECT 1 FROM calsync.outbox_delivery d "
            "WHERE d.aggregateid = o.aggregateid AND d.status = 'dead')"
        ).fetchone()
    return int(row[0])  # type: ignore[index,call-overload]


@dataclass
class Change:
    """One outside change at Cal.com, and what the salon did afterwards."""

    appointment: int
    key: str  # appointment:phase, as the booking's metadata
    kind: str  # reschedule | cancel
    by: str  # attendee | host
    uid: str
    starts_at: dt.datetime  # the appointment's start when the change was made
    new_start: dt.datetime | None = None
    new_end: dt.datetime | None = None
    refused: str | None = None  # Cal.com refused it (the worker got there first): no change made
    follow_up: str = "none"  # move | cancel | none: what the salon then did
    due: float = 0.0


class OutsideChanges(threading.Thread):
    """Attendees and hosts changing synced bookings in Cal.com's pages while the worker is killed and restarted;
    the salon moves or cancels some of those appointments a few seconds later. Uses the simulator's client alone
    (the main thread does not call the simulator meanwhile) and its own database connection."""

    def __init__(self, db: Db, sim: SimulatorProcess, ids: list[int], duration_s: float) -> None:
        super().__init__(daemon=True, name="outside-changes")
        self.db, self.sim = db, sim
        self.candidates = set(ids)
        self.spread_s = 0.85 * duration_s  # the changes are spread over this much of the workers' working time
        self.worked_s = 0.0  # working time of the workers killed so far (set by the main thread)
        self.working_since: float | None = None  # when the current worker started working
        self.rng = random.Random(29 + SEED - 2026)
        self.stopping = threading.Event()
        self.changes: list[Change] = []
        self.band = 0
        self.error: str | None = None
        self.looked: Counter[str] = Counter()  # candidates looked at, and why they were left alone

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=120)
        assert not self.is_alive(), "the outside-changes thread did not stop"

    def run(self) -> None:
        try:
            with self.db.connect() as conn:
                while not self.stopping.is_set():
                    self._follow_up(conn, due_only=True)
                    since = self.working_since
                    worked = self.worked_s + (time.monotonic() - since if since is not None else 0.0)
                    share = min(1.0, worked / self.spread_s)
                    if sum(c.refused is None for c in self.changes) < math.ceil(OUTSIDE * share):
                        self._inject(conn)
                    self.stopping.wait(0.3)
                self._follow_up(conn, due_only=False)
        except Exception:
            self.error = traceback.format_exc()

    def _inject(self, conn: Any) -> None:
        """One outside change, of an appointment whose bookings are at Cal.com exactly as the salon has them and
        are the ones the salon recorded (so no create of the worker is still unrecorded: its lookup, made around
        the salon's time, could not find a booking moved elsewhere). Events may be pending: the worker meets the
        outside change then, as it would in life."""
        rows = conn.execute(
            """SELECT a.id, a.starts_at FROM appointments a
               WHERE a.id = ANY(%s) AND a.status <> 'cancelled'
                 AND CASE WHEN a.is_composite THEN NOT EXISTS (SELECT 1 FROM appointment_phases p
                     WHERE p.appointment_id = a.id AND p.staff_required AND p.calcom_booking_uid IS NULL)
                     ELSE a.calcom_v2_booking_uid IS NOT NULL END
               ORDER BY random() LIMIT 8""",
            [sorted(self.candidates)],
        ).fetchall()
        conn.commit()
        self.looked["queries"] += 1
        for appointment_id, starts_at in rows:
            units = conn.execute(EXPECTED_SQL, [[appointment_id]]).fetchall()
            conn.commit()
            want = {f"{a}:{p}": (_utc(s), _utc(e), uid) for a, p, s, e, uid in units}
            live = active(meta(self.sim, appointment_id))
            if sorted(_key(b) for b in live) != sorted(want) or any(
                (_utc(b["start"]), _utc(b["end"]), b["uid"]) != want[_key(b)] for b in live
            ):
                self.looked["not (yet) as the salon has it"] += 1
                continue  # leave it to the worker
            self.candidates.discard(appointment_id)
            self._change(appointment_id, _utc(starts_at), self.rng.choice(live))
            return

    def _change(self, appointment_id: int, starts_at: dt.datetime, booking: dict[str, Any]) -> None:
        rng = self.rng
        c = Change(
            appointment_id,
            _key(booking),
            "reschedule" if rng.random() < 0.6 else "cancel",
            rng.choice(("attendee", "host")),
            booking["uid"],
            starts_at,
        )
        try:
            if c.kind == "reschedule":
                start, end = _utc(booking["start"]), _utc(booking["end"])
                if booking["eventTypeId"] == CUT and rng.random() < 0.5:
                    to = start + dt.timedelta(minutes=40)  # later in its own slot (free until the next cut)
                else:
                    to = OUTSIDE_AT + dt.timedelta(hours=self.band)
                    self.band += 1
                new = self.sim.reschedule_as(c.uid, _iso(to), by=c.by, reason="Passt mir besser")["booking"]
                c.new_start, c.new_end = _utc(new["start"]), _utc(new["end"])
                assert (c.new_start, c.new_end - c.new_start) == (to, end - start), f"moved as asked: {new}"
            else:
                self.sim.cancel_as(c.uid, by=c.by, reason="Kann leider nicht")
        except httpx.HTTPStatusError as exc:
            c.refused = f"{exc.response.status_code} {exc.response.text[:300]}"
        if c.refused is None:
            r = rng.random()
            c.follow_up = "move" if r < 1 / 3 else "cancel" if r < 2 / 3 else "none"
            c.due = time.monotonic() + rng.uniform(1.0, 4.0)
        self.changes.append(c)

    def _follow_up(self, conn: Any, due_only: bool) -> None:
        for c in self.changes:
            if c.follow_up == "none" or c.due == 0 or (due_only and c.due > time.monotonic()):
                continue
            c.due = 0
            if c.follow_up == "move":
                conn.execute(
                    "UPDATE appointments SET starts_at = starts_at + %s, ends_at = ends_at + %s "
                    "WHERE id = %s AND status <> 'cancelled'",
                    [SALON_MOVE, SALON_MOVE, c.appointment],
                )
            else:
                conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [c.appointment])
            conn.commit()


def _wait_started(proc: WorkerProcess, deadline: float) -> float:
    """When the worker logged worker_started (it works from then on); at the deadline, now."""
    while time.monotonic() < deadline and proc.poll() is None:
        if '"event": "worker_started"' in proc.output():
            return time.monotonic()
        time.sleep(0.05)
    return time.monotonic()


def _lines_about(procs: list[WorkerProcess], appointment_ids: set[int], limit: int = 12) -> list[str]:
    """The worker log lines (of every process of the run) that name one of these appointments."""
    needles = [f'"appointment_id": {a},' for a in appointment_ids] + [
        f'"appointment_id": "{a}"' for a in appointment_ids
    ]
    found = []
    for proc in procs:
        for line in proc.output().splitlines():
            if any(n in line for n in needles):
                found.append(line[:400])
    return found[-limit:]


def _attempts(db: Db, appointment_ids: set[int], limit: int = 12) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT appointment_id, phase_id, action, request_path, response_status, category, left(error, 160) "
            "FROM calsync.sync_attempts WHERE appointment_id = ANY(%s) ORDER BY id DESC LIMIT %s",
            [sorted(appointment_ids), limit],
        ).fetchall()


@pytest.mark.slow
def test_chaos_converges(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    sim.set_config(
        fail_5xx_rate=0.20,
        timeout_rate=0.10,
        timeout_hang_s=1.5,
        reset_after_store_rate=0.05,
        false_negative_rate=0.03,
        rate_limit=10_000_000,
        seed=SEED,
    )
    ids, impossible, customer_kinds = _schedule(db, salon)
    _event_types(sim)
    args = [
        "--concurrency",
        "16",
        "--request-timeout-s",
        "1",
        "--retry-base-s",
        "0.2",
        "--max-attempts",
        "200",
        "--retry-cap-s",
        "5",
        "--lease-s",
        "5",
        "--rate-limit",
        "10000000",
    ]
    env = {"CALSYNC_POLL_INTERVAL_S": "0.5"}
    started = time.monotonic()
    kills, worked, startup = 0, 0.0, []
    procs = [worker_process(db, sim, *args, **env)]
    outside = OutsideChanges(db, sim, ids, KILL_FOR_S)
    outside.start()
    meddled = False
    try:
        while worked < KILL_FOR_S:
            # killed 2-5 s into its work: a worker takes seconds to start (imports, connecting, probing
            # Cal.com), and one killed before it works tests nothing
            spawned = time.monotonic()
            working = _wait_started(procs[-1], spawned + 60)
            startup.append(working - spawned)
            outside.working_since = working
            time.sleep(random.uniform(2.0, 5.0))
            procs[-1].kill()
            procs[-1].wait()
            kills += 1
            worked += time.monotonic() - working
            outside.worked_s, outside.working_since = worked, None
            if not meddled and worked > KILL_FOR_S / 3:
                _meddle(db, ids)
                meddled = True
            procs.append(worker_process(db, sim, *args, **env))
    finally:
        outside.stop()
    with db.connect() as conn:
        row = conn.execute("SELECT count(*) FROM appointments WHERE calcom_sync_status = 'synced'").fetchone()
    synced_while_killing = int(row[0]) if row else 0
    assert outside.error is None, f"the outside-changes thread failed:\n{outside.error}"
    proc = procs[-1]
    deadline = time.monotonic() + float(os.environ.get("CALSYNC_CHAOS_CONVERGE_S", "600"))
    try:
        while _pending(db) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
        assert proc.poll() is None, f"the worker exited on its own:\n{proc.output()[-3000:]}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    took = time.monotonic() - started
    stats = sim.stats()

    # what the end state must be, unit by unit
    all_ids = ids + impossible
    expected = _expected(db, all_ids)
    with db.connect() as conn:
        now_at = {int(a): _utc(s) for a, s in conn.execute("SELECT id, starts_at FROM appointments").fetchall()}
    made = [c for c in outside.changes if c.refused is None]
    by_key = {c.key: c for c in made}
    want: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    drift, cancels_left, uid_known = [], [], set()
    for key, (start, end, _) in expected.items():
        appointment_id = int(key.split(":")[0])
        if appointment_id in impossible:
            want[key] = []
            continue
        c = by_key.get(key)
        followed = c is not None and now_at[appointment_id] != c.starts_at  # the salon moved it afterwards
        if c is not None and not followed and c.kind == "reschedule":
            assert c.new_start is not None and c.new_end is not None
            want[key] = [(c.new_start, c.new_end)]
            drift.append(key)
        elif c is not None and not followed:
            want[key] = []
            cancels_left.append(key)
        else:
            want[key] = [(start, end)]
            uid_known.add(key)
    found: dict[str, list[dict[str, Any]]] = {}
    for b in sim.bookings():
        if b["status"] not in ("cancelled", "rejected"):
            found.setdefault(_key(b), []).append(b)
    orphans = {k: [b["uid"] for b in bs] for k, bs in found.items() if k not in expected}
    wrong = {
        k: (w, sorted((_utc(b["start"]), _utc(b["end"])) for b in found.get(k, [])))
        for k, w in want.items()
        if sorted((_utc(b["start"]), _utc(b["end"])) for b in found.get(k, [])) != w
    }
    unknown_uid = {
        k: (expected[k][2], found[k][0]["uid"])
        for k in uid_known
        if k not in wrong and found.get(k) and expected[k][2] != found[k][0]["uid"]
    }
    with db.connect() as conn:
        dead_rows = conn.execute(
            "SELECT aggregateid::bigint, last_category, left(last_error, 300) FROM calsync.outbox_delivery "
            "WHERE status = 'dead' ORDER BY 1"
        ).fetchall()
        not_synced = conn.execute(
            "SELECT id, calcom_sync_status, sync_error_code, left(sync_error_message, 200) FROM appointments "
            "WHERE status <> 'cancelled' AND calcom_sync_status <> 'synced' ORDER BY id"
        ).fetchall()
        left = conn.execute(
            "SELECT o.aggregateid, o.type, d.status, d.attempts, d.last_category, left(d.last_error, 200), "
            "d.next_attempt_at - now(), d.locked_by FROM calsync.outbox o "
            "LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id "
            "WHERE NOT EXISTS (SELECT 1 FROM calsync.outbox_delivery x WHERE x.aggregateid = o.aggregateid "
            "AND x.status = 'dead') ORDER BY o.seq LIMIT 20"
        ).fetchall()
    dead = {int(a): (cat, err) for a, cat, err in dead_rows}
    dead_by_category = Counter(cat for cat, _ in dead.values())
    kinds = Counter(f"{c.kind} by {c.by}" for c in made)
    follow_ups = Counter(f"{c.kind}, then {c.follow_up}" for c in made)
    print(
        f"\nchaos: {N} appointments (+{IMPOSSIBLE} no length fits), {kills} kills in {worked:.0f} s of work "
        f"(start-up {min(startup):.1f}-{max(startup):.1f} s), {synced_while_killing} synced by then, converged "
        f"after {took:.0f} s; simulator requests {stats['requestsTotal']}, faults {stats['faults']}; "
        f"customers {dict(customer_kinds)}; outside changes {len(made)} ({dict(kinds)}), refused "
        f"{len(outside.changes) - len(made)}, salon afterwards {dict(follow_ups)}, looked {dict(outside.looked)}; "
        f"bookings expected "
        f"{sum(map(len, want.values()))}, found {sum(map(len, found.values()))}, wrong {len(wrong)}, orphans "
        f"{len(orphans)}; dead {dict(dead_by_category)} (appointments {sorted(dead)}); drift left {len(drift)}, "
        f"outside cancels left {len(cancels_left)}"
    )
    bad = {int(k.split(":")[0]) for k in list(wrong) + list(orphans) + list(unknown_uid)}
    bad |= {a for a in dead if a not in impossible} | {int(a) for a, *_ in left}
    bad |= {a for a, *_ in not_synced if a not in impossible}
    bad = set(sorted(bad)[:5])  # the first few, in full
    unexpected_dead = Counter(f"{cat}: {err[-120:]}" for a, (cat, err) in dead.items() if a not in impossible)
    context = (
        f"\noutside changes of these: {[c for c in outside.changes if c.appointment in bad][:6]}"
        f"\nattempts: {_attempts(db, bad)}\nworker log: " + "\n".join(_lines_about(procs, bad))
        if bad
        else ""
    )
    assert not unexpected_dead, f"dead only what no length fits; also dead: {dict(unexpected_dead)}{context}"
    assert not left, f"every event was delivered; left: {left}{context}"
    assert sorted(dead) == sorted(impossible), f"what no length fits is dead: {dead}"
    assert set(dead_by_category) == {"EVENT_TYPE_LENGTH"}, f"dead by category: {dead}"
    assert not orphans, (
        f"live bookings for cancelled, superseded or unknown units: {list(orphans.items())[:10]}{context}"
    )
    assert not wrong, f"units without exactly their interval (want, found): {list(wrong.items())[:10]}{context}"
    assert not unknown_uid, f"the salon names another booking (salon, Cal.com): {list(unknown_uid.items())[:10]}"
    failed = {a: code for a, _, code, _ in not_synced}
    assert failed == dict.fromkeys(impossible, "EVENT_TYPE_LENGTH"), f"not synced: {not_synced[:10]}{context}"
    errors = [line for p in procs for line in p.output().splitlines() if '"level": "error"' in line]
    assert not errors, "the worker logged errors (faults are retries, not errors):\n" + "\n".join(errors[:5])
