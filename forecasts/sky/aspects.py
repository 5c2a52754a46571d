"""Aspects: the angles between two bodies' zodiac longitudes that astrologers name.

Orbs follow common practice: wider when the Sun or Moon is involved, narrower for the
weaker sextile. The mean node takes no aspects here.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

import numpy as np
from skyfield.searchlib import find_discrete

from forecasts.sky.ephemeris import (
    PLANET_SLUGS,
    BodyPosition,
    iso_utc,
    longitudes_at,
    to_datetime,
    to_time,
    wrap180,
)


@dataclass(frozen=True)
class AspectKind:
    name: str
    angle: float
    glyph: str
    luminary_orb: float  # when the Sun or Moon is one of the pair
    planet_orb: float


ASPECT_KINDS: tuple[AspectKind, ...] = (
    AspectKind("conjunction", 0.0, "\u260c", 8.0, 6.0),
    AspectKind("sextile", 60.0, "\u26b9", 5.0, 4.0),
    AspectKind("square", 90.0, "\u25a1", 8.0, 6.0),
    AspectKind("trine", 120.0, "\u25b3", 8.0, 6.0),
    AspectKind("opposition", 180.0, "\u260d", 8.0, 6.0),
)
ASPECT_KINDS_BY_NAME: dict[str, AspectKind] = {kind.name: kind for kind in ASPECT_KINDS}
LUMINARIES = frozenset({"sun", "moon"})
ASPECT_BODY_SLUGS: tuple[str, ...] = PLANET_SLUGS

# Root finding samples the angle this often; two perfections of one aspect closer together
# than this (only possible right at a station) would be seen as none.
PERFECTION_STEP_DAYS = 1.0 / 12.0
PERFECTION_EPSILON_DAYS = 0.5 / 86400.0


def orb_limit(kind: AspectKind, body_a: str, body_b: str) -> float:
    """Widest orb (degrees) at which the pair is said to be in this aspect."""
    return kind.luminary_orb if {body_a, body_b} & LUMINARIES else kind.planet_orb


@dataclass(frozen=True)
class Aspect:
    """Two bodies in aspect at an instant."""

    body_a: str
    body_b: str
    aspect: str  # conjunction, sextile, square, trine or opposition
    angle: float  # the aspect's exact angle
    separation: float  # the actual angular distance, 0..180 degrees
    orb: float  # |separation - angle|
    applying: bool  # the orb is shrinking
    exact_time: datetime | None = None  # when it perfects inside the window asked about, if it does

    @property
    def bodies(self) -> tuple[str, str]:
        return (self.body_a, self.body_b)

    def to_dict(self) -> dict:
        return {
            "bodies": [self.body_a, self.body_b],
            "aspect": self.aspect,
            "angle": self.angle,
            "separation": round(self.separation, 4),
            "orb": round(self.orb, 4),
            "applying": self.applying,
            "exact_time": iso_utc(self.exact_time) if self.exact_time else None,
        }


def separation(a: BodyPosition, b: BodyPosition) -> float:
    """Angular distance between two longitudes, 0..180 degrees."""
    return abs(float(wrap180(a.longitude - b.longitude)))


def orb_rate(a: BodyPosition, b: BodyPosition, angle: float) -> float:
    """How fast (degrees/day) the orb from an aspect of this angle is changing; negative = applying."""
    difference = float(wrap180(a.longitude - b.longitude))
    # The separation grows when the body ahead moves faster than the one behind.
    separation_rate = (a.speed - b.speed) * (1.0 if difference >= 0.0 else -1.0)
    return separation_rate * (1.0 if abs(difference) >= angle else -1.0)


def aspect_between(a: BodyPosition, b: BodyPosition) -> Aspect | None:
    """The aspect two positions make, if any lies within its orb."""
    apart = separation(a, b)
    for kind in ASPECT_KINDS:
        orb = abs(apart - kind.angle)
        if orb <= orb_limit(kind, a.body, b.body):
            return Aspect(a.body, b.body, kind.name, kind.angle, apart, orb, orb_rate(a, b, kind.angle) < 0.0)
    return None


def find_aspects(positions: Mapping[str, BodyPosition], bodies: Sequence[str] = ASPECT_BODY_SLUGS) -> list[Aspect]:
    """Every aspect in orb among the given bodies, tightest first."""
    present = [slug for slug in bodies if slug in positions]
    found = [aspect_between(positions[a], positions[b]) for a, b in combinations(present, 2)]
    return sorted((aspect for aspect in found if aspect), key=lambda aspect: aspect.orb)


def _offset_function(body_a: str, body_b: str, target: float):
    """A discrete function of time that flips when longitude(a) - longitude(b) passes target.

    It also flips half a turn away from the target; callers drop those crossings.
    """

    def is_past(t):
        longitudes = longitudes_at(t, [body_a, body_b])
        return wrap180(longitudes[0] - longitudes[1] - target) >= 0.0

    is_past.step_days = PERFECTION_STEP_DAYS
    return is_past


def perfection_times(body_a: str, body_b: str, aspect: str, start: datetime, end: datetime) -> list[datetime]:
    """Instants in [start, end) when the pair makes the aspect exactly, found by root finding."""
    if end <= start:
        return []
    kind = ASPECT_KINDS_BY_NAME[aspect]
    t0, t1 = to_time(start), to_time(end)
    # Longitude(a) - longitude(b) equals +angle or -angle; the two coincide for 0 and 180.
    targets = {kind.angle % 360.0, (-kind.angle) % 360.0}
    times: list[datetime] = []
    for target in targets:
        found, _ = find_discrete(t0, t1, _offset_function(body_a, body_b, target), epsilon=PERFECTION_EPSILON_DAYS)
        if len(found) == 0:
            continue
        longitudes = longitudes_at(found, [body_a, body_b])
        genuine = np.abs(wrap180(longitudes[0] - longitudes[1] - target)) < 90.0
        times.extend(to_datetime(t) for t, keep in zip(found, genuine, strict=True) if keep)
    return sorted(when for when in times if start <= when < end)
