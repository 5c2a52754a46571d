"""What one sign's transit facts let a forecast say: its window, and which states hold for all
of it, which events happen in it (the rule: forecasts/writing/grounding.py's docstring).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from forecasts.writing.slots import parse_instant

if TYPE_CHECKING:
    from forecasts.writing.grounding import Violation

STATION_BODIES = ("mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto")
WAXING_PHASES = {"waxing_crescent", "first_quarter", "waxing_gibbous"}
WANING_PHASES = {"waning_gibbous", "last_quarter", "waning_crescent"}


@dataclass
class SkyTruth:
    """What may be said about one sign's window, derived from its transit facts."""

    sign: str
    start: str = ""
    end: str = ""
    whole_sign: dict[str, str] = field(default_factory=dict)
    whole_house: dict[str, int] = field(default_factory=dict)
    signs_any: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    named_signs: set[str] = field(default_factory=set)
    houses_any: set[int] = field(default_factory=set)
    retrograde_whole: set[str] = field(default_factory=set)
    retrograde_any: set[str] = field(default_factory=set)
    direct_whole: set[str] = field(default_factory=set)
    stations: set[tuple[str, str]] = field(default_factory=set)
    ingresses: set[tuple[str, str]] = field(default_factory=set)
    aspects_whole: set[tuple[frozenset, str]] = field(default_factory=set)
    aspects_exact: set[tuple[frozenset, str]] = field(default_factory=set)
    aspect_kinds: set[str] = field(default_factory=set)
    lunations: set[tuple[str, str]] = field(default_factory=set)
    eclipses: set[tuple[str, str]] = field(default_factory=set)
    phase_at_start: str = ""
    bodies: set[str] = field(default_factory=set)
    # An event's instant (to the minute) -> for each event then, the names a sentence must use to
    # state it (an aspect: both bodies; a lunation: the Moon; an eclipse: the word), for time slots.
    event_bodies: dict[datetime, list[frozenset[str]]] = field(default_factory=lambda: defaultdict(list))
    # (sign, instant) of each change of the Moon's sign: stated only with a slot at that instant.
    moon_ingresses: set[tuple[str, datetime]] = field(default_factory=set)
    # Sentence -> its violations, so a text checked twice (passage, then forecast) costs once.
    verdicts: dict[str, tuple[Violation, ...]] = field(default_factory=dict)

    @property
    def waxing_whole(self) -> bool:
        return self.phase_at_start in WAXING_PHASES and not any(p == "full_moon" for p, _ in self.lunations)

    @property
    def waning_whole(self) -> bool:
        return self.phase_at_start in WANING_PHASES and not any(p == "new_moon" for p, _ in self.lunations)

    def phase_whole(self, shape: str) -> bool:
        return not self.lunations and self.phase_at_start.endswith(shape)


_truths: OrderedDict[str, SkyTruth] = OrderedDict()
_truths_lock = threading.Lock()
_last_truth: tuple | None = None


def sky_truth(facts: list[dict], sign: str) -> SkyTruth:
    """What a sign's facts let a text say (see the module docstring); the last few are reused."""
    global _last_truth
    recent = _last_truth  # the same list again (one forecast checked in several passes)
    if recent is not None and recent[0] is facts and recent[1] == sign:
        return recent[2]
    key = hashlib.sha1(json.dumps([sign, facts], sort_keys=True, default=str).encode()).hexdigest()  # noqa: S324
    with _truths_lock:
        truth = _truths.get(key)
    if truth is None:
        truth = _sky_truth(facts, sign)
        with _truths_lock:
            _truths[key] = truth
            while len(_truths) > 32:
                _truths.popitem(last=False)
    _last_truth = (facts, sign, truth)
    return truth


def _sky_truth(facts: list[dict], sign: str) -> SkyTruth:
    truth = SkyTruth(sign=sign)
    states = [f for f in facts if f.get("valid_from") and f.get("valid_until")]
    if states:
        truth.start = min(f["valid_from"] for f in states)
        truth.end = max(f["valid_until"] for f in states)

    def whole(fact: dict) -> bool:
        # A state that does not say when it holds (facts edited by hand) is not known to hold all day.
        return (fact.get("valid_from") or "~") <= truth.start and (fact.get("valid_until") or "") >= truth.end

    for fact in facts:
        kind, bodies = fact.get("kind"), fact.get("bodies") or []
        truth.bodies.update(bodies)
        named = {"lunation": frozenset({"moon"}), "eclipse": frozenset({"eclipse"})}.get(kind, frozenset(bodies))
        for instant in _event_instants(fact):
            truth.event_bodies[instant].append(named)
            if kind == "moon_ingress":
                truth.moon_ingresses.add((fact["sign"], instant))
        if kind in ("body_in_sign", "moon_sign"):
            body = bodies[0]
            truth.signs_any[body].add(fact["sign"])
            truth.named_signs.add(fact["sign"])
            truth.houses_any.add(fact["house"])
            if whole(fact):
                truth.whole_sign[body] = fact["sign"]
                truth.whole_house[body] = fact["house"]
        elif kind == "retrograde":
            truth.retrograde_any.add(bodies[0])
            if whole(fact):
                truth.retrograde_whole.add(bodies[0])
        elif kind == "station":
            truth.stations.add((bodies[0], fact.get("direction") or ""))
        elif kind in ("ingress", "moon_ingress"):
            truth.ingresses.add((bodies[0], fact["sign"]))
            truth.named_signs.update(s for s in (fact.get("sign"), fact.get("from_sign")) if s)
        elif kind == "aspect":
            pair, name = frozenset(bodies), fact["aspect"]
            truth.aspect_kinds.add(name)
            if fact.get("exact_times"):
                truth.aspects_exact.add((pair, name))
            limit = fact.get("orb_limit") or 0.0
            if (fact.get("orb_at_start") or 99.0) <= limit and (fact.get("orb_at_end") or 99.0) <= limit:
                truth.aspects_whole.add((pair, name))
        elif kind == "lunation":
            truth.lunations.add((fact["phase"], fact.get("sign") or ""))
            truth.named_signs.add(fact.get("sign") or "")
        elif kind == "eclipse":
            truth.eclipses.add((fact.get("eclipse") or "", fact.get("sign") or ""))
            truth.named_signs.add(fact.get("sign") or "")
        elif kind == "moon_phase":
            truth.phase_at_start = fact.get("phase") or ""
    for body in STATION_BODIES:
        if (
            body in truth.signs_any
            and body not in truth.retrograde_any
            and not any(b == body for b, _ in truth.stations)
        ):
            truth.direct_whole.add(body)
    truth.named_signs.discard("")
    return truth


def _event_instants(fact: dict) -> list[datetime]:
    """The instants a slot may name for this fact: an event's time, an aspect's exact times."""
    if fact.get("kind") in ("body_in_sign", "moon_sign", "retrograde", "moon_phase"):
        return []
    values = [fact.get("time"), *(fact.get("exact_times") or [])]
    return [instant for instant in map(parse_instant, values) if instant is not None]
