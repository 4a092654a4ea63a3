"""Hypothesis strategies: the data the app, its imports and its voice agent really write, and worse.

Text never contains NUL (PostgreSQL text cannot hold it; psycopg refuses it before the server sees it).
Strings that stand for numbers or booleans keep to ASCII, so that PostgreSQL's locale-dependent notion of
whitespace (\\s matches U+2003 but not U+00A0 under C.UTF-8) cannot make the oracle disagree with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, drawn in proportion to its weight (st.one_of merges repeated branches)."""
    pool = [i for i, (w, _) in enumerate(choices) for _ in range(w)]
    return st.sampled_from(pool).flatmap(lambda i: choices[i][1])


# ---------------------------------------------------------------- customers

_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
_CONTROL = st.characters(min_codepoint=1, max_codepoint=31) | st.sampled_from("\x7f\x85\u200b\u200e\u2028\ufeff")
_BLANKS = ("", " ", "   ", "\t", "\n", " \t\r\n ", "\u00a0", "\u3000", "\u2003", " \u00a0 ")

names = weighted(
    (3, st.text(_TEXT, max_size=40)),
    (1, st.just("")),
    (3, st.sampled_from(["Hans Schuster", "Jürgen Groß", "Zoë Ørsted-Ålund", "李小龙", "محمد", "O'Brien; DROP"])),
    (2, st.text(_CONTROL | st.sampled_from("abc "), min_size=1, max_size=20)),
    (1, st.sampled_from(_BLANKS)),
    # over-long (an excess of only spaces is cut, not refused), NULL
    (1, st.text(_TEXT, min_size=250, max_size=300) | st.builds(lambda n: "Maria" + " " * n, st.integers(250, 300))),
    (1, st.none()),
)

_INVALID_EMAILS = (
    "frau.klein@web",
    "kunde@@mail.de",
    "@mail.de",
    "kunde@",
    "kunde",
    "a b@mail.de",
    "kunde@mail..de",
    "<kunde@mail.de>",
    "hans.schuster@mail.example",  # the salon customer's own address: the global unique index
    "petra.mueller@mail.example",
    "customer_1@placeholder.invalid",  # someone else's placeholder, given as a real address
    "CUSTOMER_2@PLACEHOLDER.INVALID",
    "noreply@example.com",
)

emails = weighted(
    (4, st.emails().filter(lambda e: len(e) <= 255)),
    (3, st.sampled_from(_INVALID_EMAILS)),
    (3, st.sampled_from(_BLANKS)),
    (1, st.text(_TEXT, max_size=30)),
    (3, st.none()),
    # padded with spaces past varchar(255) (cut), or huge (refused)
    (1, st.builds(lambda e, n: e + " " * n, st.sampled_from(["real@mail.example", "x@y.de"]), st.integers(1, 300))),
    (1, st.builds(lambda n: "k" * n + "@mail.example", st.integers(240, 300)) | st.text(_TEXT, min_size=256)),
)

_anon_ts = st.integers(1_600_000_000, 1_900_000_000)
_hex8 = st.text("0123456789abcdef", min_size=8, max_size=8)
phones = weighted(
    (3, st.builds(lambda t, h: f"anonymous_{t}_{h}", _anon_ts, _hex8)),
    (1, st.builds(lambda t: f"anonymous_{t}", _anon_ts)),
    (
        1,
        st.sampled_from(["anonymous", "anonymous_", "Anonymous_1763495863_2d3eaf7e", " anonymous_1763495863_2d3eaf7e"]),
    ),
    (2, st.sampled_from(["+4915112345678", "+49 151 12345678", "+49 (0)151 1234-5678", "+1-202-555-0100", "+999"])),
    (2, st.sampled_from(["015112345678", "0151 12345678", "030/1234567", "(030) 123 45 67", "0049 30 1234567"])),
    (1, st.text("0123456789 +-/()", min_size=1, max_size=25)),
    (2, st.sampled_from(_BLANKS)),
    (3, st.none()),
    (1, st.text(_TEXT, max_size=30)),
    (1, st.text(_TEXT, min_size=256, max_size=280)),
)

# an UPDATE of a customer's contact: ("email", value), ("phone", value), or both; "own placeholder" is
# resolved to customer_<its id>@placeholder.invalid when it runs
OWN_PLACEHOLDER = "\x01own placeholder"
contact_updates = st.lists(
    st.one_of(
        st.tuples(st.just("email"), emails | st.just(OWN_PLACEHOLDER)),
        st.tuples(st.just("phone"), phones),
        st.tuples(st.just("both"), st.tuples(emails, phones)),
    ),
    max_size=3,
)

# ---------------------------------------------------------------- services.segments

_minutes_values = st.one_of(
    st.integers(-5, 200),
    st.sampled_from([0, 1, 5, 15, 40, 50]),
    st.floats(min_value=-10, max_value=300, allow_nan=False).map(lambda f: round(f, 2)),
    st.sampled_from([0.4, 0.5, 1.5, 2.5, 0.0001]),
    st.sampled_from([2**31 - 1, 2**31, 10**11, 10**40, 1e16]),
    st.sampled_from(["15", " 5 ", "\t30\n", "0", "0.5", "1.5", "-5", "1e2", "5 min", "", "fünf", "99999999999"]),
    st.none(),
    st.booleans(),
    st.just([]),
    st.just({"min": 5}),
)
_staff_required = st.one_of(
    st.booleans(),
    st.none(),
    st.sampled_from(["true", "false", "yes", "no", "1", "0", "t", "f", "on", "off", " TRUE ", "Ye"]),
    st.sampled_from(["maybe", "", "nein", "o", "2"]),
    st.sampled_from([0, 1, 2]),
    st.just([]),
)
_keys = st.one_of(
    st.sampled_from(["A", "A_gap", "B", "B_gap", "C", "D", "Färben"]),
    st.none(),
    st.text(_TEXT, max_size=12),
    st.builds(lambda n: "K" * n, st.integers(44, 60)),  # around varchar(50), and 50 minus '_gap'
    st.builds(lambda n: "K" + " " * n, st.integers(50, 60)),  # over-long only by spaces
    st.integers(0, 9),
    st.just({"x": 1}),
)
_names = st.one_of(
    st.sampled_from(["Wickeln", "Einwirkzeit", "Fixieren", "Ausspülen", "Schneiden & Föhnen"]),
    st.none(),
    st.text(_TEXT, max_size=20),
    st.builds(lambda n: "N" * n, st.integers(240, 270)),
    st.just(["Wickeln"]),
)

_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "key": _keys,
    "name": _names,
    "durationMin": _minutes_values,
    "durationMax": _minutes_values,
    "duration_minutes": _minutes_values,
    "duration": _minutes_values,
    "gap_after": _minutes_values,
    "gapAfterMin": _minutes_values,
    "order": st.one_of(st.integers(-3, 12), st.sampled_from(["1", " 2 ", "x", 2**31, 10**12]), st.none()),
    "type": st.sampled_from(["active", "processing", "Processing", "gap", None, 5]),
    "staff_required": _staff_required,
    "preferSameStaff": st.booleans(),
    "allowedRoles": st.just(["stylist"]),
}


def _segment(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A segment object with some of ``fields`` (each present or not)."""
    return st.fixed_dictionaries({}, optional={f: _FIELD_VALUES[f] for f in fields})


_live = _segment(("key", "name", "durationMin", "type", "staff_required", "order"))
_legacy = _segment(("key", "name", "duration", "gap_after", "preferSameStaff"))
_range = _segment(("key", "name", "durationMin", "durationMax", "gapAfterMin", "allowedRoles", "preferSameStaff"))
_anything = _segment(tuple(_FIELD_VALUES))
_segment_ok = st.fixed_dictionaries(
    {"key": st.sampled_from("ABCD"), "durationMin": st.integers(1, 90)},
    optional={"type": st.sampled_from(["active", "processing"]), "order": st.integers(0, 5)},
)

DAUERWELLE = [
    {"key": "A", "name": "Wickeln", "durationMin": 50, "type": "active", "staff_required": True, "order": 1},
    {
        "key": "A_gap",
        "name": "Einwirkzeit",
        "durationMin": 15,
        "type": "processing",
        "staff_required": False,
        "order": 2,
    },
    {"key": "B", "name": "Fixieren", "durationMin": 5, "type": "active", "staff_required": True, "order": 3},
    {"key": "B_gap", "name": "Einwirkzeit Fixierung", "durationMin": 10, "type": "processing", "order": 4},
    {"key": "C", "name": "Ausspülen", "durationMin": 15, "type": "active", "staff_required": True, "order": 5},
    {"key": "D", "name": "Schneiden & Föhnen", "durationMin": 40, "type": "active", "staff_required": True, "order": 6},
]

# The value written to services.segments. SQL_NULL is the SQL NULL (the import's update() without the field).
SQL_NULL = object()


def _many(n: int, minutes: int) -> list[dict[str, Any]]:
    return [{"key": f"S{i}", "durationMin": minutes, "order": (i * 7) % 13} for i in range(n)]


small_segments = st.one_of(
    st.just(SQL_NULL),
    st.sampled_from([None, {}, {"A": 5}, "A,B", 135, True, []]),  # json null, not arrays, empty
    st.just(DAUERWELLE),
    st.lists(_live, min_size=1, max_size=8),
    st.lists(_legacy, min_size=1, max_size=6),
    st.lists(_range, min_size=1, max_size=6),
    st.lists(_anything, min_size=1, max_size=6),
    st.lists(_segment_ok, min_size=1, max_size=8),
    st.lists(_segment_ok | st.sampled_from([None, 5, "A", [], [1]]), min_size=1, max_size=5),
)
# thousands of entries: rarer, they cost a thousand phases each
segments = weighted((12, small_segments), (1, st.builds(_many, st.integers(1000, 3000), st.sampled_from([1, 5]))))


# ---------------------------------------------------------------- appointment times

_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)


def _epoch_minutes(d: dt.datetime) -> int:
    return int((d - _EPOCH).total_seconds()) // 60


# Instants (epoch minutes) to start from: Europe/Berlin's spring gap (2030-03-31 02:00 local -> 03:00)
# and autumn overlap (2030-10-27 03:00 local -> 02:00), an ordinary Monday, year 1 and 9999, and the
# two ends of timestamptz's range.
ANCHORS = {
    "spring": _epoch_minutes(dt.datetime(2030, 3, 31, 1, 0, tzinfo=_UTC)),
    "autumn": _epoch_minutes(dt.datetime(2030, 10, 27, 0, 0, tzinfo=_UTC)),
    "ordinary": _epoch_minutes(dt.datetime(2031, 5, 5, 8, 0, tzinfo=_UTC)),
    "year1": _epoch_minutes(dt.datetime(1, 1, 1, 9, 0, tzinfo=_UTC)),
    "year9999": _epoch_minutes(dt.datetime(9999, 12, 31, 18, 0, tzinfo=_UTC)),
    "past": _epoch_minutes(dt.datetime(2020, 2, 29, 12, 0, tzinfo=_UTC)),
    "ts_min": -210866803200 // 60 + 60 * 24,
    "ts_max": 9224318015999 // 60 - 60 * 6,
}


@dataclass(frozen=True)
class Time:
    """A timestamptz input: minutes after an anchor, a Berlin wall-clock text, or ±infinity."""

    anchor: str | None = None
    minutes: int = 0
    text: str | None = None

    def sql(self) -> tuple[str | None, float | None]:
        """(literal, epoch seconds): exactly one is set; the database turns it into a timestamptz."""
        if self.text is not None:
            return self.text, None
        assert self.anchor is not None
        return None, float(60 * (ANCHORS[self.anchor] + self.minutes))


_BERLIN_WALL = st.builds(
    lambda day, h, m: f"{day} {h:02d}:{m:02d}:00 Europe/Berlin",
    st.sampled_from(["2030-03-31", "2030-10-27", "2031-03-30", "2031-10-26"]),
    st.integers(0, 4),
    st.sampled_from([0, 15, 30, 45, 59]),
)
_near_anchor = st.builds(Time, st.sampled_from(sorted(ANCHORS)), st.integers(-16, 16).map(lambda k: 15 * k))
times = weighted(
    (6, _near_anchor),
    (3, st.builds(lambda t: Time(text=t), _BERLIN_WALL)),
    (1, st.sampled_from([Time(text="infinity"), Time(text="-infinity")])),
)
# how long an appointment is: minutes after its start (0 and negative end before or at it), or no ends_at
_positive = st.sampled_from([30, 60, 135, 155, 15, 1, 600])
lengths = weighted((6, _positive), (1, st.sampled_from([0, -30, -1])), (1, st.none()))
shifts = st.sampled_from(["15 minutes", "-15 minutes", "1 hour", "23 hours", "1 day", "-1 day", "1 mon", "7 days"])
_known = st.sampled_from(
    ["pending", "confirmed", "scheduled", "booked", "in_progress", "completed", "cancelled", "no_show"]
)
statuses = weighted((6, _known), (1, st.sampled_from(["done", "error", "manual_review_required", "", "Confirmed"])))
