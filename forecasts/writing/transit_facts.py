"""One sign's sky as ranked facts: what the writers, the checker and the emails read.

`sign_facts(sign, window)` turns the sign-independent sky of a window (transits.py) into
`forecasts.writing.facts.Fact` dicts for readers of one sun sign: each state and event with its
solar house, a plain-words summary whose instants come from the same text, and a rank (kind
first, then the sign's ruler, angular houses and tight aspects) so the writers lead with what
matters most.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from forecasts.sky.ephemeris import (
    BODIES_BY_SLUG,
    BODY_SLUGS,
    NODE,
    STATION_BODY_SLUGS,
    display_longitude,
    iso_utc,
)
from forecasts.sky.events import SkyEvent
from forecasts.writing.facts import FACT_KEYS
from forecasts.zodiac import SIGN_SLUGS, SIGNS_BY_SLUG, Sign

if TYPE_CHECKING:
    from forecasts.writing.transits import SkyWindow

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


def house_for(body_sign: str, sun_sign: str) -> int:
    """Solar whole-sign house (1-12) of a body in `body_sign` for a reader born under `sun_sign`."""
    return (SIGN_SLUGS.index(body_sign) - SIGN_SLUGS.index(sun_sign)) % 12 + 1


def sign_facts(sign: Sign, window: SkyWindow) -> list[dict]:
    """The window's facts for readers of `sign`, ranked highest first."""
    return _FactBuilder(sign, window).build()


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
