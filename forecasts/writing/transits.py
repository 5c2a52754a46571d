"""Transits for one sun sign over a window of time, the way sun-sign columns are written.

Houses are solar whole-sign houses: the reader's sun sign is the 1st house, the next sign
the 2nd, and so on, so house = (body's sign index - sun sign index) mod 12 + 1.

The window is a UTC interval [start, end) so a caller can pass a reader's local day: the
Moon changes sign every ~2.5 days, and "the Moon is in Leo" is only true for part of some
days. Every fact therefore says when it holds: `time` for instants, `valid_from` and
`valid_until` for states.

`SignTransits.facts` is the contract with the writers, the checker and the emails: a list of
`forecasts.writing.facts.Fact` dicts (the keys and what they mean are documented there),
ranked and worded by forecasts/writing/transit_facts.py.
"""

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations

import numpy as np

from forecasts.sky.aspects import ASPECT_BODY_SLUGS, ASPECT_KINDS, orb_limit, orb_rate, perfection_times
from forecasts.sky.ephemeris import (
    BodyPosition,
    MoonPhase,
    display_longitude,
    iso_utc,
    longitudes_at,
    moon_phase_from,
    positions_at,
    to_time,
    wrap180,
)
from forecasts.sky.events import SkyEvent, events_between
from forecasts.writing.transit_facts import house_for, sign_facts
from forecasts.zodiac import SIGN_SLUGS, SIGNS_BY_SLUG

MAX_WINDOW = timedelta(days=7)
ASPECT_SAMPLE_STEP_DAYS = 1.0 / 24.0


@dataclass(frozen=True)
class WindowAspect:
    """An aspect in orb at some point of the window."""

    body_a: str
    body_b: str
    aspect: str
    orb_limit: float
    orb_at_start: float
    orb_at_end: float
    tightest_orb: float
    applying: bool  # at the start of the window
    exact_times: tuple[datetime, ...]

    def to_dict(self) -> dict:
        return {
            "bodies": [self.body_a, self.body_b],
            "aspect": self.aspect,
            "orb_limit": self.orb_limit,
            "orb_at_start": round(self.orb_at_start, 4),
            "orb_at_end": round(self.orb_at_end, 4),
            "tightest_orb": round(self.tightest_orb, 4),
            "applying": self.applying,
            "exact_times": [iso_utc(when) for when in self.exact_times],
        }


@dataclass(frozen=True)
class SkyWindow:
    """Everything about the sky in [start, end) that does not depend on the reader's sign."""

    start: datetime
    end: datetime
    positions_at_start: dict[str, BodyPosition]
    positions_at_end: dict[str, BodyPosition]
    moon_phase: MoonPhase  # at the start
    events: tuple[SkyEvent, ...]
    aspects: tuple[WindowAspect, ...]


@dataclass(frozen=True)
class BodyTransit:
    """A body's place for the reader at the start of the window."""

    body: str
    sign: str
    house: int
    degree: float
    longitude: float
    speed: float
    retrograde: bool

    def to_dict(self) -> dict:
        return {
            "body": self.body,
            "sign": self.sign,
            "house": self.house,
            "degree": round(self.degree, 4),
            "longitude": display_longitude(self.longitude, 4),
            "speed": round(self.speed, 6),
            "retrograde": self.retrograde,
        }


@dataclass(frozen=True)
class MoonIngress:
    time: datetime
    sign: str
    from_sign: str
    house: int

    def to_dict(self) -> dict:
        return {"time": iso_utc(self.time), "sign": self.sign, "from_sign": self.from_sign, "house": self.house}


@dataclass
class SignTransits:
    """The sky of a window as it falls for one sun sign."""

    sign: str
    window_start: datetime
    window_end: datetime
    bodies: list[BodyTransit]  # at the window start, in BODY_SLUGS order
    moon_sign_at_start: str
    moon_house_at_start: int
    moon_ingresses: list[MoonIngress]
    moon_phase: MoonPhase  # at the window start
    facts: list[dict] = field(default_factory=list)  # ranked, highest first

    @property
    def moon_sign_at_end(self) -> str:
        return self.moon_ingresses[-1].sign if self.moon_ingresses else self.moon_sign_at_start

    def to_dict(self) -> dict:
        return {
            "sign": self.sign,
            "window_start": iso_utc(self.window_start),
            "window_end": iso_utc(self.window_end),
            "bodies": [body.to_dict() for body in self.bodies],
            "moon": {
                "sign_at_start": self.moon_sign_at_start,
                "house_at_start": self.moon_house_at_start,
                "ingresses": [ingress.to_dict() for ingress in self.moon_ingresses],
                "sign_at_end": self.moon_sign_at_end,
            },
            "moon_phase": self.moon_phase.to_dict(),
            "facts": self.facts,
        }


def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    for when in (start, end):
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"{when!r} has no time zone; pass aware UTC datetimes")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError("the window must end after it starts")
    if end - start > MAX_WINDOW:
        raise ValueError("the window may be at most 7 days long")
    return start, end


@functools.lru_cache(maxsize=64)
def sky_window(start: datetime, end: datetime) -> SkyWindow:
    """The sign-independent part of a window's sky (computed once, shared by all twelve signs)."""
    start, end = _check_window(start, end)
    at_start = positions_at(start)
    return SkyWindow(
        start=start,
        end=end,
        positions_at_start=at_start,
        positions_at_end=positions_at(end),
        moon_phase=moon_phase_from(at_start["sun"].longitude, at_start["moon"].longitude),
        events=tuple(events_between(start, end)),
        aspects=tuple(_window_aspects(start, end, at_start)),
    )


def _window_aspects(start: datetime, end: datetime, at_start: dict[str, BodyPosition]) -> list[WindowAspect]:
    """Aspects in orb at any moment of the window, with the instants they perfect."""
    t0, t1 = to_time(start), to_time(end)
    samples = max(2, int(np.ceil((t1.tt - t0.tt) / ASPECT_SAMPLE_STEP_DAYS)) + 1)
    grid = t0.ts.tt_jd(np.linspace(t0.tt, t1.tt, samples))
    slugs = list(ASPECT_BODY_SLUGS)
    longitudes = dict(zip(slugs, longitudes_at(grid, slugs), strict=True))
    found = []
    for body_a, body_b in combinations(slugs, 2):
        difference = wrap180(longitudes[body_a] - longitudes[body_b])
        apart = np.abs(difference)
        for kind in ASPECT_KINDS:
            limit = orb_limit(kind, body_a, body_b)
            orbs = np.abs(apart - kind.angle)
            if not (orbs <= limit).any():
                continue
            exact = ()
            if _crosses(difference, kind.angle):
                exact = tuple(perfection_times(body_a, body_b, kind.name, start, end))
            found.append(
                WindowAspect(
                    body_a=body_a,
                    body_b=body_b,
                    aspect=kind.name,
                    orb_limit=limit,
                    orb_at_start=float(orbs[0]),
                    orb_at_end=float(orbs[-1]),
                    tightest_orb=0.0 if exact else float(orbs.min()),
                    applying=orb_rate(at_start[body_a], at_start[body_b], kind.angle) < 0.0,
                    exact_times=exact,
                )
            )
    return found


def _crosses(difference: np.ndarray, angle: float) -> bool:
    """Whether the signed difference passes +angle or -angle between two samples."""
    for target in {angle, -angle}:
        offset = wrap180(difference - target)
        changes = np.sign(offset[:-1]) != np.sign(offset[1:])
        # A jump by nearly a full turn is the wrap-around, not a crossing.
        genuine = np.abs(offset[:-1] - offset[1:]) < 180.0
        if (changes & genuine).any():
            return True
    return False


def transits_for_sign(sign_slug: str, window_start_utc: datetime, window_end_utc: datetime) -> SignTransits:
    """Transits for readers of one sun sign over [window_start_utc, window_end_utc)."""
    if sign_slug not in SIGNS_BY_SLUG:
        raise ValueError(f"unknown sign {sign_slug!r}")
    start, end = _check_window(window_start_utc, window_end_utc)
    window = sky_window(start, end)
    sign = SIGNS_BY_SLUG[sign_slug]
    at_start = window.positions_at_start
    bodies = [
        BodyTransit(
            body=slug,
            sign=position.sign,
            house=house_for(position.sign, sign_slug),
            degree=position.degree,
            longitude=position.longitude,
            speed=position.speed,
            retrograde=position.retrograde,
        )
        for slug, position in at_start.items()
    ]
    moon_ingresses = [
        MoonIngress(event.time, event.sign, event.from_sign or "", house_for(event.sign, sign_slug))
        for event in window.events
        if event.type == "ingress" and event.body == "moon"
    ]
    facts = sign_facts(sign, window)
    return SignTransits(
        sign=sign_slug,
        window_start=start,
        window_end=end,
        bodies=bodies,
        moon_sign_at_start=at_start["moon"].sign,
        moon_house_at_start=house_for(at_start["moon"].sign, sign_slug),
        moon_ingresses=moon_ingresses,
        moon_phase=window.moon_phase,
        facts=facts,
    )


def transits_for_all_signs(window_start_utc: datetime, window_end_utc: datetime) -> dict[str, SignTransits]:
    """Transits for all twelve signs over one window (the sky is computed once)."""
    return {slug: transits_for_sign(slug, window_start_utc, window_end_utc) for slug in SIGN_SLUGS}
