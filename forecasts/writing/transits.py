"""Transits for one sun sign over a window of time, the way sun-sign columns are written.

Houses are solar whole-sign houses: the reader's sun sign is the 1st house, the next sign
the 2nd, and so on, so house = (body's sign index - sun sign index) mod 12 + 1.

The window is a UTC interval [start, end) so a caller can pass a reader's local day: the
Moon changes sign every ~2.5 days, and "the Moon is in Leo" is only true for part of some
days. Every fact therefore says when it holds: `time` for instants, `valid_from` and
`valid_until` for states.

`SignTransits.facts` is the contract with the writers, the checker and the emails: a list of
`forecasts.writing.facts.Fact` dicts (the keys and what they mean are documented there).
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations

import numpy as np

from forecasts.sky.aspects import ASPECT_BODY_SLUGS, ASPECT_KINDS, orb_limit, orb_rate, perfection_times
from forecasts.sky.ephemeris import (
    BODIES_BY_SLUG,
    BODY_SLUGS,
    NODE,
    STATION_BODY_SLUGS,
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
from forecasts.writing.facts import FACT_KEYS
from forecasts.zodiac import SIGN_SLUGS, SIGNS_BY_SLUG, Sign

HOUSE_TOPICS: dict[int, tuple[str, ...]] = {
    1: ("self", "appearance"),
    2: ("money", "values"),
    3: ("communication", "siblings", "short trips"),
    4: ("home", "family"),
    5: ("romance", "creativity", "children"),
    6: ("health", "work routines"),
    7: ("partnerships",),
    8: ("shared resources", "intimacy"),
    9: ("travel", "study", "beliefs"),
    10: ("career", "status"),
    11: ("friends", "groups", "hopes"),
    12: ("rest", "retreat", "the hidden"),
}
ANGULAR_HOUSES = frozenset({1, 4, 7, 10})
FACT_KINDS: tuple[str, ...] = (
    "body_in_sign",
    "retrograde",
    "station",
    "ingress",
    "aspect",
    "moon_phase",
    "lunation",
    "eclipse",
    "moon_sign",
    "moon_ingress",
)

# Categories sit 100 apart and the boosts add up to less than that, so the order of kinds
# (eclipse or station, lunation, ingress, aspect, Moon sign, background) always holds.
RANK_BASE: dict[str, int] = {
    "eclipse": 700,
    "station": 690,
    "lunation": 500,
    "ingress": 400,
    "aspect": 300,
    "moon_ingress": 220,
    "moon_sign": 200,
    "retrograde": 120,
    "moon_phase": 100,
    "body_in_sign": 50,
}
RULER_BOOST = 40
ANGULAR_BOOST = 30
EXACT_ASPECT_BOOST = 15
TIGHT_ASPECT_BOOST = 10  # scaled by how tight the orb gets
FLEETING_MOON_ASPECT_PENALTY = 20  # the Moon's aspects last hours, not days

MAX_WINDOW = timedelta(days=7)
ASPECT_SAMPLE_STEP_DAYS = 1.0 / 24.0


def house_for(body_sign: str, sun_sign: str) -> int:
    """Solar whole-sign house (1-12) of a body in `body_sign` for a reader born under `sun_sign`."""
    return (SIGN_SLUGS.index(body_sign) - SIGN_SLUGS.index(sun_sign)) % 12 + 1


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
    facts = _FactBuilder(sign, window).build()
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


def _name(slug: str) -> str:
    return BODIES_BY_SLUG[slug].name


def _sign_name(slug: str) -> str:
    return SIGNS_BY_SLUG[slug].name


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _topics_text(house: int) -> str:
    topics = HOUSE_TOPICS[house]
    return topics[0] if len(topics) == 1 else ", ".join(topics[:-1]) + " and " + topics[-1]


def _place(sign: str, house: int) -> str:
    return f"{_sign_name(sign)}, your {_ordinal(house)} house ({_topics_text(house)})"


def _clock(when: datetime) -> str:
    """How a summary writes an instant: '14:32 UTC on 9 Mar'."""
    when = when.astimezone(UTC)
    return f"{when:%H:%M} UTC on {when.day} {when:%b}"


# Summaries are written with _at(when) where an instant goes, so the sentence and its instants
# come from one piece of text and cannot disagree; _summary_fields() splits them apart.
_INSTANT_MARK = "\x00"


def _at(when: datetime) -> str:
    """An instant inside a summary being written (a marked ISO string, never shown as it is)."""
    return f"{_INSTANT_MARK}{iso_utc(when)}{_INSTANT_MARK}"


def _summary_fields(marked: str) -> dict:
    """summary_template, instants and summary from a sentence written with _at() marks."""
    pieces = marked.split(_INSTANT_MARK)
    texts, instants = pieces[::2], pieces[1::2]
    # Names and topics are plain text: double any brace so str.format leaves it alone.
    escaped = [text.replace("{", "{{").replace("}", "}}") for text in texts]
    template = "".join(text + (f"{{{slot}}}" if slot < len(instants) else "") for slot, text in enumerate(escaped))
    # Filled from the stored instants (rounded to the second, like `time`), so the template and
    # instants as stored always give back this very summary.
    summary = template.format(*(_clock(datetime.fromisoformat(instant)) for instant in instants))
    return {"summary": summary, "summary_template": template, "instants": instants}


def _degree_text(longitude: float) -> str:
    within = display_longitude(longitude, 4) % 30.0
    minutes_total = min(int(within * 60.0), 30 * 60 - 1)
    degrees, minutes = divmod(minutes_total, 60)
    return f"{degrees}\u00b0{minutes:02d}\u2032"


def _the(slug: str) -> str:
    """'the Sun', 'Mars': the luminaries and the node take an article."""
    return f"the {_name(slug)}" if slug in {"sun", "moon", NODE} else _name(slug)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


class _FactBuilder:
    """Turns one window's sky into ranked facts for one sign."""

    def __init__(self, sign: Sign, window: SkyWindow) -> None:
        self.sign = sign
        self.window = window
        self.facts: list[dict] = []

    def build(self) -> list[dict]:
        self._states()
        self._events()
        self._aspects()
        self._moon_phase()
        order = {slug: index for index, slug in enumerate(BODY_SLUGS)}
        return sorted(
            self.facts,
            key=lambda fact: (-fact["rank"], fact["time"] or "~", [order[b] for b in fact["bodies"]], fact["kind"]),
        )

    def _house(self, sign: str) -> int:
        return house_for(sign, self.sign.slug)

    def _rank(self, kind: str, bodies: Sequence[str], houses: Sequence[int], extra: int = 0) -> int:
        rank = RANK_BASE[kind] + extra
        if self.sign.ruler in bodies:
            rank += RULER_BOOST
        if ANGULAR_HOUSES.intersection(houses):
            rank += ANGULAR_BOOST
        return rank

    def _add(self, kind: str, bodies: Sequence[str], summary: str, rank_extra: int = 0, **values) -> None:
        """Record one fact; `summary` is written with _at() for each instant it names."""
        houses = values.get("houses") or ([values["house"]] if values.get("house") else [])
        fact = dict.fromkeys(FACT_KEYS)
        fact.update(values)
        if fact["house"] is not None:
            fact["topics"] = list(HOUSE_TOPICS[fact["house"]])
        fact.update(kind=kind, bodies=list(bodies), rank=self._rank(kind, bodies, houses, rank_extra))
        fact.update(_summary_fields(summary))
        for key in ("time", "valid_from", "valid_until"):
            if isinstance(fact[key], datetime):
                fact[key] = iso_utc(fact[key])
        self.facts.append(fact)

    def _states(self) -> None:
        """Each body's sign (and direction) over the window, split where it changes."""
        window = self.window
        for slug, position in window.positions_at_start.items():
            changes = [
                event
                for event in window.events
                if event.body == slug and event.type in ("ingress", "station_retrograde", "station_direct")
            ]
            sign, retrograde, longitude, since = position.sign, position.retrograde, position.longitude, window.start
            spans = []
            for event in changes:
                spans.append((sign, retrograde, longitude, since, event.time))
                if event.type == "ingress":
                    sign = event.sign
                else:
                    retrograde = event.type == "station_retrograde"
                longitude, since = event.longitude, event.time
            spans.append((sign, retrograde, longitude, since, window.end))
            for sign, retrograde, longitude, since, until in spans:
                self._body_state(slug, sign, retrograde, longitude, since, until)
            if slug in STATION_BODY_SLUGS:
                self._retrograde_spans(slug, spans)

    def _body_state(self, slug: str, sign: str, retrograde: bool, longitude: float, since, until) -> None:
        house = self._house(sign)
        common = dict(sign=sign, house=house, valid_from=since, valid_until=until, degree=round(longitude % 30.0, 4))
        common.update(longitude=display_longitude(longitude, 4), retrograde=retrograde)
        if slug == "moon":
            when = "" if (since, until) == (self.window.start, self.window.end) else self._span_text(since, until)
            self._add("moon_sign", [slug], f"The Moon is in {_place(sign, house)}{when}.", **common)
            return
        motion = " retrograde" if retrograde and slug != NODE else ""
        when = "" if (since, until) == (self.window.start, self.window.end) else self._span_text(since, until)
        summary = f"{_capitalised(_the(slug))} is{motion} in {_place(sign, house)}{when}."
        self._add("body_in_sign", [slug], summary, **common)

    def _span_text(self, since: datetime, until: datetime) -> str:
        if since == self.window.start:
            return f" until {_at(until)}"
        if until == self.window.end:
            return f" from {_at(since)}"
        return f" from {_at(since)} until {_at(until)}"

    def _retrograde_spans(self, slug: str, spans: list) -> None:
        merged: list[list] = []
        for sign, retrograde, _, since, until in spans:
            if not retrograde:
                continue
            if merged and merged[-1][1] == since:
                merged[-1][1] = until
            else:
                merged.append([since, until, sign])
        for since, until, sign in merged:
            house = self._house(sign)
            when = "" if (since, until) == (self.window.start, self.window.end) else self._span_text(since, until)
            self._add(
                "retrograde",
                [slug],
                f"{_name(slug)} is retrograde in {_place(sign, house)}{when}.",
                sign=sign,
                house=house,
                valid_from=since,
                valid_until=until,
                retrograde=True,
            )

    def _events(self) -> None:
        for event in self.window.events:
            house = self._house(event.sign)
            place = _place(event.sign, house)
            at = _at(event.time)
            common = dict(
                sign=event.sign, house=house, time=event.time, longitude=display_longitude(event.longitude, 4)
            )
            common["degree"] = round(common["longitude"] % 30.0, 4)
            if event.type == "ingress":
                moving_back = _moves_backwards(event)
                verb = "moves back into" if moving_back else "enters"
                kind = "moon_ingress" if event.body == "moon" else "ingress"
                summary = f"{_capitalised(_the(event.body))} {verb} {place}, at {at}."
                self._add(kind, [event.body], summary, from_sign=event.from_sign, retrograde=moving_back, **common)
            elif event.type in ("station_retrograde", "station_direct"):
                direction = event.type.removeprefix("station_")
                summary = (
                    f"{_name(event.body)} stations {direction} at {_degree_text(event.longitude)} {place}, at {at}."
                )
                self._add(
                    "station",
                    [event.body],
                    summary,
                    direction=direction,
                    retrograde=direction == "retrograde",
                    **common,
                )
            elif event.type in ("new_moon", "first_quarter", "full_moon", "last_quarter"):
                label = event.type.replace("_", " ").capitalize().replace("moon", "Moon")
                summary = f"{label} at {_degree_text(event.longitude)} {place}, at {at}."
                self._add("lunation", ["sun", "moon"], summary, phase=event.type, **common)
            else:
                eclipse = event.type.removesuffix("_eclipse")
                summary = f"{_capitalised(event.detail or '')} {eclipse} eclipse in {place}, greatest at {at}."
                self._add(
                    "eclipse", ["sun", "moon"], summary.strip(), eclipse=eclipse, eclipse_type=event.detail, **common
                )

    def _aspects(self) -> None:
        at_start = self.window.positions_at_start
        for aspect in self.window.aspects:
            bodies = [aspect.body_a, aspect.body_b]
            signs = [at_start[body].sign for body in bodies]
            houses = [self._house(sign) for sign in signs]
            extra = round(TIGHT_ASPECT_BOOST * (1.0 - aspect.tightest_orb / aspect.orb_limit))
            if aspect.exact_times:
                extra += EXACT_ASPECT_BOOST
            if "moon" in bodies and self.sign.ruler != "moon":
                extra -= FLEETING_MOON_ASPECT_PENALTY
            if aspect.exact_times:
                timing = "exact at " + " and ".join(_at(when) for when in aspect.exact_times)
            elif aspect.orb_at_start <= aspect.orb_limit:
                # No bare orb: an orb is true only at a named instant (see forecasts/writing/facts.py).
                timing = "in orb, applying" if aspect.applying else "in orb, separating"
            else:
                timing = f"coming into orb by {_at(self.window.end)}"
            summary = (
                f"{_capitalised(_the(aspect.body_a))} {aspect.aspect} {_the(aspect.body_b)} ({timing}), "
                f"linking your {_ordinal(houses[0])} and {_ordinal(houses[1])} houses."
            )
            if houses[0] == houses[1]:
                summary = f"{summary.rsplit(', linking', 1)[0]}, in your {_ordinal(houses[0])} house."
            self._add(
                "aspect",
                bodies,
                summary,
                rank_extra=extra,
                signs=signs,
                houses=houses,
                aspect=aspect.aspect,
                time=aspect.exact_times[0] if aspect.exact_times else None,
                exact_times=[iso_utc(when) for when in aspect.exact_times],
                orb_at_start=round(aspect.orb_at_start, 4),
                orb_at_end=round(aspect.orb_at_end, 4),
                orb_limit=aspect.orb_limit,
                applying=aspect.applying,
            )

    def _moon_phase(self) -> None:
        phase = self.window.moon_phase
        moon = self.window.positions_at_start["moon"]
        house = self._house(moon.sign)
        summary = f"At {_at(self.window.start)} the Moon is {phase.label} and {round(phase.illumination * 100)}% lit."
        self._add(
            "moon_phase",
            ["moon"],
            summary,
            sign=moon.sign,
            house=house,
            time=self.window.start,
            phase=phase.name,
            illumination=round(phase.illumination, 4),
        )


def _moves_backwards(event: SkyEvent) -> bool:
    """Whether an ingress goes back into the previous sign (a planet's retrograde ingress)."""
    # The mean node always moves backwards through the signs; for it that is the normal way.
    return (
        event.body != NODE
        and event.from_sign is not None
        and (SIGN_SLUGS.index(event.from_sign) - SIGN_SLUGS.index(event.sign)) % 12 == 1
    )
