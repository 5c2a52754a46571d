"""The sky fact: the one shape transits.py writes and the writers, checker and emails read.

`transits_for_sign(...).facts` is a list of `Fact` dicts, JSON-ready and stored on each Forecast.
Every fact carries the same keys (None where a key does not apply):

    kind          body_in_sign | retrograde | station | ingress | aspect | moon_phase |
                  lunation | eclipse | moon_sign | moon_ingress
    bodies        body slugs involved, e.g. ["mercury"] or ["sun", "saturn"]
    sign, house   where it happens for a single place (sign slug, solar house 1-12)
    topics        that house's topics, e.g. ["home", "family"]
    signs, houses one entry per body, for aspects
    aspect        conjunction | sextile | square | trine | opposition
    time          ISO 8601 UTC instant of an event (or of the measurement, for moon_phase)
    valid_from, valid_until   the part of the window a state holds for (ISO UTC)
    retrograde    whether the body moves backwards (body_in_sign, ingress, station)
    degree, longitude         degrees within the sign / along the zodiac
    direction     retrograde | direct (station)
    from_sign     the sign left (ingress, moon_ingress)
    phase         new_moon | first_quarter | full_moon | last_quarter (lunation), or one of
                  the eight phase names (moon_phase)
    illumination  fraction of the Moon lit (moon_phase)
    eclipse, eclipse_type     solar | lunar; total | annular | hybrid | partial | penumbral
    orb_at_start, orb_at_end, orb_limit, applying, exact_times   (aspect). An orb is the
                  angular distance from exact AT A NAMED INSTANT: here the window's start and
                  end. Texts and "In the sky" never state a bare orb: they say when an aspect is
                  exact (its exact_times), and `manage.py sky --at` gives the orb at any instant.
    rank          higher first (see transit_facts.RANK_BASE)
    summary       one neutral English sentence with times in UTC
    summary_template, instants   the same sentence with a slot for each instant ("{0}"), and
                  those instants (ISO UTC), so each reader's zone can fill them in
    id            f01, f02... in rank order, given when a forecast is written (facts_with_ids)

A **state** (a body's sign, a retrograde, an aspect in orb) may be told only if it holds for the
whole forecast window; an **event** (ingress, station, lunation, eclipse, an aspect's perfection)
only if it happens inside it. `statable_facts` marks which is which.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypedDict

from forecasts.writing.slots import parse_instant
from forecasts.zodiac import SIGNS_BY_SLUG


class Fact(TypedDict, total=False):
    kind: str
    bodies: list[str]
    sign: str | None
    house: int | None
    topics: list[str] | None
    signs: list[str] | None
    houses: list[int] | None
    aspect: str | None
    time: str | None
    valid_from: str | None
    valid_until: str | None
    retrograde: bool | None
    degree: float | None
    longitude: float | None
    direction: str | None
    from_sign: str | None
    phase: str | None
    illumination: float | None
    eclipse: str | None
    eclipse_type: str | None
    orb_at_start: float | None
    orb_at_end: float | None
    orb_limit: float | None
    applying: bool | None
    exact_times: list[str] | None
    rank: int
    summary: str
    summary_template: str
    instants: list[str]
    id: str
    timing: str  # statable_facts: "state" or "event"
    used: bool  # stored forecasts: whether the text relied on it


FACT_KEYS: tuple[str, ...] = tuple(key for key in Fact.__annotations__ if key not in ("id", "timing", "used"))

WINDOW_EARLIEST_OFFSET = timedelta(hours=14)  # UTC+14 (Line Islands) starts each date first
WINDOW_LATEST_OFFSET = timedelta(hours=-12)  # UTC-12 ends it last


def forecast_window(day: date) -> tuple[datetime, datetime]:
    """The UTC interval in which `day` is the local date somewhere on Earth (50 hours):
    [day 00:00 at UTC+14, day+1 00:00 at UTC-12) = [day-1 10:00Z, day+1 12:00Z)."""
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    return midnight - WINDOW_EARLIEST_OFFSET, midnight + timedelta(days=1) - WINDOW_LATEST_OFFSET


BODY_NAMES = {
    "sun": "the Sun",
    "moon": "the Moon",
    "mercury": "Mercury",
    "venus": "Venus",
    "mars": "Mars",
    "jupiter": "Jupiter",
    "saturn": "Saturn",
    "uranus": "Uranus",
    "neptune": "Neptune",
    "pluto": "Pluto",
    "north_node": "the North Node",
}
ORDINAL_WORDS = (
    "",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
)
EVENT_KINDS = frozenset({"ingress", "station", "lunation", "eclipse"})


def body_name(slug: str, capital: bool = False) -> str:
    name = BODY_NAMES.get(slug, slug.replace("_", " ").title())
    return name[:1].upper() + name[1:] if capital else name


def sign_name(slug: str) -> str:
    return SIGNS_BY_SLUG[slug].name


def house_phrase(house: int) -> str:
    return f"your {ORDINAL_WORDS[house]} house"


def facts_with_ids(facts: Sequence[dict]) -> list[dict]:
    """Copies of the facts with stable ids f01, f02... in the order given (rank order)."""
    return [{**fact, "id": f"f{index:02d}"} for index, fact in enumerate(facts, start=1)]


def _window_bounds(facts: Sequence[dict]) -> tuple[str, str]:
    states = [f for f in facts if f.get("valid_from") and f.get("valid_until")]
    if not states:
        return "", ""
    return min(f["valid_from"] for f in states), max(f["valid_until"] for f in states)


def fact_timing(fact: dict, bounds: tuple[str, str]) -> str | None:
    """'state' (true all window), 'event' (in the window, not datable) or None (not statable)."""
    kind = fact.get("kind")
    start, end = bounds
    if kind in ("body_in_sign", "moon_sign", "retrograde"):
        whole = (fact.get("valid_from") or "~") <= start and (fact.get("valid_until") or "") >= end
        return "state" if whole else None
    if kind == "aspect":
        limit = fact.get("orb_limit") or 0.0
        if (fact.get("orb_at_start") or 99.0) <= limit and (fact.get("orb_at_end") or 99.0) <= limit:
            return "state"
        return "event" if fact.get("exact_times") else None
    if kind in EVENT_KINDS:
        return "event"
    if kind == "moon_phase":
        return "state"
    return None  # moon_ingress: never stated in the shared text


def statable_facts(facts: Sequence[dict]) -> list[dict]:
    """The facts a shared text may state, each with a `timing` of 'state' or 'event'."""
    bounds = _window_bounds(facts)
    chosen = []
    for fact in facts:
        timing = fact_timing(fact, bounds)
        if timing:
            chosen.append({**fact, "timing": timing})
    return chosen


def moon_phase_state(facts: Sequence[dict]) -> str:
    """'waxing' or 'waning' when that holds for the whole window, else ''."""
    phase = next((f.get("phase") or "" for f in facts if f.get("kind") == "moon_phase"), "")
    lunations = {f.get("phase") for f in facts if f.get("kind") == "lunation"}
    if phase in {"waxing_crescent", "first_quarter", "waxing_gibbous"} and "full_moon" not in lunations:
        return "waxing"
    if phase in {"waning_gibbous", "last_quarter", "waning_crescent"} and "new_moon" not in lunations:
        return "waning"
    return ""


def whole_window_houses(facts: Sequence[dict]) -> dict[str, int]:
    """Body -> house, for the bodies that stay in one sign for the whole window."""
    bounds = _window_bounds(facts)
    return {
        fact["bodies"][0]: fact["house"]
        for fact in facts
        if fact.get("kind") in ("body_in_sign", "moon_sign") and fact_timing(fact, bounds) == "state"
    }


def _degrees(value) -> float | None:
    """A stored angle as a float (0.0 included); None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def fact_in_window(fact: dict, start: datetime, end: datetime) -> bool:
    """Whether a fact happens or holds in [start, end): a reader's own part of the day.

    An event (ingress, station, lunation, eclipse, the Moon's change of sign) when its instant
    falls inside; an aspect when it is exact inside, or in orb for the whole forecast window; a
    state (a body's sign, a retrograde) when it holds for some of it. The Moon's phase at the
    window's start is a measurement of another moment: never.
    """
    kind = fact.get("kind")
    if kind == "moon_phase":
        return False
    if kind == "aspect":
        exact = fact.get("exact_times") or [fact.get("time")]
        if any(start <= t < end for t in map(parse_instant, exact) if t):
            return True
        limit, first, last = (_degrees(fact.get(key)) for key in ("orb_limit", "orb_at_start", "orb_at_end"))
        return limit is not None and first is not None and last is not None and max(first, last) <= limit
    if kind in ("body_in_sign", "moon_sign", "retrograde"):
        since, until = parse_instant(fact.get("valid_from")), parse_instant(fact.get("valid_until"))
        # A state stored without its bounds holds for the whole forecast window.
        return (since is None or since < end) and (until is None or until > start)
    instant = parse_instant(fact.get("time"))
    return instant is not None and start <= instant < end
