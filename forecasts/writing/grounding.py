"""Is a forecast's text true to the sky? A pure checker over plain text and transit facts.

The forecast window
-------------------
A Forecast is written once per (date, sign) and read on that local date in every time zone
from UTC-12 to UTC+14. The window is the union of those local days:

    [date 00:00 at UTC+14, date+1 00:00 at UTC-12)  =  [date-1 10:00Z, date+1 12:00Z), 50 hours.

The rule every text must follow, so that each thing it states is true for every reader of
that date, wherever they are:

- A state ("Venus is in Pisces", "Mercury is retrograde", "Jupiter in your fourth house",
  "Venus trine Saturn", "the Moon is waxing") may be stated only if it holds for the WHOLE window.
  An aspect counts when it is within orb for the whole window, or perfects inside it.
- An event (an ingress, a station, a lunation, an eclipse, an aspect's perfection) may be stated
  only if it happens inside the window, and never as happening "today", "tonight", "this
  morning", at a clock time, or on a named day: no local date is shared by every zone, so
  events are written as "around this date" and the reader's email gives the time in their zone.
- The Moon's sign may be stated only if the Moon stays in one sign for the whole window; the
  Moon's change of sign is never stated (it depends on the reader's zone; the per-reader email
  adds it with the local time).
- A sign named in passing must be the reader's sign, or one some body occupies, enters or
  leaves in the window, or where a lunation or eclipse falls. A house named in passing must hold
  some body in the window. Bodies, points and techniques the facts do not cover (Chiron, the
  Ascendant, a void-of-course Moon...), degrees and clock times are never stated.
- Generic words need something to stand on: "a sextile" needs some sextile among the facts,
  "retrograde" some retrograde body, "full moon" a full moon in the window, "eclipse" an eclipse.

`check(text, facts, sign)` extracts claims with patterns ("<Body> (is) in <Sign>", "<Body>
retrograde", "<Body> stations direct", "<Body> <aspect> <Body>", "<Body> and <Body> form a
<aspect>", "<Body> enters <Sign>", "full moon in <Sign>", "<Body> in your <n>th house",
"<Sign> season"...) and returns the violations; an empty list means the text is grounded.
It errs on the strict side: a false alarm costs a regeneration, a miss could mail a false sky.
The words and patterns are in forecasts/writing/sky_claims.py; what the facts allow, in
forecasts/writing/sky_truth.py; here, the judging of each claim a sentence makes.
"""

import re
from dataclasses import dataclass

from forecasts.writing.sky_claims import (
    ASPECT_OF_WORD,
    ASPECT_STEMS,
    CLAIM_ASPECT_OF_WORD,
    CLOCK,
    DEGREES,
    DEICTIC,
    DIGIT,
    HOUSE,
    MENTIONS,
    PATTERNS,
    SIGN_ADJECTIVES,
    SIGNS,
    bodies_in,
    body_slug,
    house_number,
    pattern_gates,
    sentences,
    sign_slug,
)
from forecasts.writing.sky_truth import SkyTruth, sky_truth
from forecasts.writing.slots import slots_in


@dataclass(frozen=True)
class Violation:
    """One statement the facts do not support."""

    sentence: str
    claim: str
    reason: str

    def __str__(self) -> str:
        return f"{self.claim!r}: {self.reason}"


def _house_sign(house: int, sign: str) -> str:
    return SIGNS[(SIGNS.index(sign) + house - 1) % 12]


def _opposite(sign: str) -> str:
    return SIGNS[(SIGNS.index(sign) + 6) % 12]


class _Sentence:
    """One sentence being checked; matched claim words are masked so they are judged once."""

    def __init__(self, text: str) -> None:
        text = text.replace("’", "'").replace("‘", "'")
        self.original = text
        # A time slot is judged on its own (_check_slots); the patterns see only its word.
        self.slots = slots_in(text)
        for found in reversed(self.slots):
            start, end = found.span
            text = text[:start] + found.word + " ~" + text[end:]
        self.plain = text
        self.text = text
        self.events = False  # states an event (must not be dated "today")
        self.violations: list[Violation] = []

    def mask(self, start: int, end: int) -> None:
        self.text = self.text[:start] + "#" * (end - start) + self.text[end:]

    def fail(self, claim: str, reason: str) -> None:
        self.violations.append(Violation(self.original.strip(), " ".join(claim.split()), reason))


def _matches(key: str, sentence: _Sentence, gates: set[str]):
    return PATTERNS[key].finditer(sentence.text) if key in gates else ()


def _check_sentence(sentence: _Sentence, truth: SkyTruth) -> None:
    t = truth
    gates = pattern_gates(sentence.text)
    for match in _matches("lunation", sentence, gates):
        phase = f"{match['phase'].lower()}_moon"
        sign = sign_slug(match["sign"]) if match["sign"] else ""
        sentence.events = True
        if not any(p == phase and (not sign or s == sign) for p, s in t.lunations):
            where = f" in {sign.title()}" if sign else ""
            sentence.fail(match.group(0), f"no {phase.replace('_', ' ')}{where} in this forecast's window")
        sentence.mask(*match.span())
    for match in _matches("quarter", sentence, gates):
        word = match["phase"].lower()
        phases = {"first": {"first_quarter"}, "1st": {"first_quarter"}}.get(
            word, {"last_quarter"} if word in {"last", "third", "final", "3rd"} else {"first_quarter", "last_quarter"}
        )
        sign = sign_slug(match["sign"]) if match["sign"] else ""
        sentence.events = True
        if not any(p in phases and (not sign or s == sign) for p, s in t.lunations):
            sentence.fail(match.group(0), "no such quarter Moon in this forecast's window")
        sentence.mask(*match.span())
    for match in _matches("eclipse", sentence, gates):
        kind = (match["ekind"] or "").lower()
        sign = sign_slug(match["sign"]) if match["sign"] else ""
        sentence.events = True
        if not any((not kind or k == kind) and (not sign or s == sign) for k, s in t.eclipses):
            sentence.fail(match.group(0), "no such eclipse in this forecast's window")
        sentence.mask(*match.span())
    for match in _matches("season", sentence, gates):
        sign = sign_slug(match["sign"])
        if t.whole_sign.get("sun") != sign:
            sentence.fail(match.group(0), f"the Sun is not in {sign.title()} for the whole window")
        sentence.mask(*match.span())
    for match in _matches("ingress", sentence, gates):
        house = house_number(match["house"]) if match["house"] else 0
        sign = sign_slug(match["sign"]) if match["sign"] else _house_sign(house, t.sign)
        sentence.events = True
        for body in bodies_in(match["bodies"]):
            if body == "moon":
                if not any((sign, found.instant) in t.moon_ingresses for found in sentence.slots):
                    sentence.fail(
                        match.group(0), "the Moon's change of sign is stated only with a time slot at that instant"
                    )
            elif body == "south_node":
                if ("north_node", _opposite(sign)) not in t.ingresses:
                    sentence.fail(match.group(0), f"the South Node does not enter {sign.title()} in the window")
            elif (body, sign) not in t.ingresses:
                sentence.fail(match.group(0), f"{body.title()} does not enter {sign.title()} in this forecast's window")
        sentence.mask(match.end("bodies"), match.end())
    for match in _matches("station", sentence, gates):
        body = body_slug(match["body"])
        direction = (match["dir"] or match["dir2"] or "").lower()
        if match["end"] or match["end2"]:
            direction = "direct"
        elif match["begin"] or match["begin2"]:
            direction = "retrograde"
        sentence.events = True
        if not any(b == body and (not direction or d == direction) for b, d in t.stations):
            what = f"station {direction}" if direction else "station"
            sentence.fail(match.group(0), f"{body.title()} does not {what} in this forecast's window")
        sentence.mask(*match.span("pred"))
    for key in ("retrograde", "retrograde_before"):
        for match in _matches(key, sentence, gates):
            body = body_slug(match["body"])
            if body in ("north_node", "south_node"):
                pass  # the nodes always move backwards
            elif body not in t.retrograde_whole:
                sentence.fail(match.group(0), f"{body.title()} is not retrograde for the whole window")
            sentence.mask(*match.span("pred"))
    for match in _matches("direct", sentence, gates):
        body = body_slug(match["body"])
        if body not in t.direct_whole:
            sentence.fail(match.group(0), f"{body.title()} is not direct for the whole window")
        sentence.mask(*match.span("pred"))
    for key in ("aspect_between", "aspect_pair", "aspect", "meet"):
        for match in _matches(key, sentence, gates):
            groups = match.groupdict()
            a, b = groups.get("a") or groups.get("a2"), groups.get("b") or groups.get("b2")
            pair = frozenset({body_slug(a), body_slug(b)})
            if key == "meet":
                names = {"conjunction"}
            else:
                names = {CLAIM_ASPECT_OF_WORD[groups["asp"].lower()]}
                if groups.get("asp2"):
                    names.add(CLAIM_ASPECT_OF_WORD[groups["asp2"].lower()])
            if any((pair, name) in t.aspects_whole for name in names):
                pass
            elif any((pair, name) in t.aspects_exact for name in names):
                sentence.events = True
            else:
                sentence.fail(match.group(0), "no such aspect in orb for the whole window or perfecting in it")
            _check_pair_houses(sentence, t, pair, match.end())
            for name in ("asp", "asp2"):
                if groups.get(name):
                    sentence.mask(*match.span(name))
    for match in _matches("house", sentence, gates):
        house = house_number(match["house"])
        for body in bodies_in(match["bodies"]):
            if body == "south_node":
                body, house = "north_node", (house + 5) % 12 + 1
            if t.whole_house.get(body) != house:
                sentence.fail(match.group(0), f"{body.title()} is not in your house {house} for the whole window")
        sentence.mask(*match.span("house"))
    for match in _matches("in_sign", sentence, gates):
        sign = sign_slug(match["sign"])
        for body in bodies_in(match["bodies"]):
            _check_in_sign(sentence, t, body, sign, match.group(0))
        sentence.mask(*match.span("sign"))
    for match in _matches("sign_body", sentence, gates):
        _check_in_sign(sentence, t, body_slug(match["body"]), sign_slug(match["sign"]), match.group(0))
        sentence.mask(*match.span("sign"))
    _check_mentions(sentence, t)
    _check_slots(sentence, t)
    if sentence.events:
        found = DEICTIC.search(sentence.plain)
        if found:
            sentence.fail(
                found.group(0),
                "an event in this window falls on different local dates in different zones: do not date it",
            )


_PAIR_HOUSES = re.compile(
    rf"\s*,?\s*(?:[\w'-]+\s+){{0,6}}?(?:(?:in|across|through)\s+your\s+(?P<one>{HOUSE})|"
    rf"between\s+your\s+(?P<first>{HOUSE})\s+and\s+your\s+(?P<second>{HOUSE}))",
    re.IGNORECASE,
)


def _check_pair_houses(sentence: _Sentence, t: SkyTruth, pair: frozenset, end: int) -> None:
    """'Venus trine Saturn ... in your first house' / 'between your first and fifth house' places both."""
    found = _PAIR_HOUSES.match(sentence.text, end)
    if not found:
        return
    if found["one"]:
        wanted = {house_number(found["one"])}
    else:
        wanted = {house_number(found["first"]), house_number(found["second"])}
    actual = {t.whole_house.get(body) for body in pair}
    if actual != wanted:
        sentence.fail(found.group(0).strip(), "those bodies are not in those houses for the whole window")
    sentence.mask(*found.span())


def _check_slots(sentence: _Sentence, t: SkyTruth) -> None:
    """Each time slot names the instant of an event in the window that the sentence itself tells
    (it names every body of that event: both of an aspect, the Moon of a lunation, the eclipse):
    a slot is filled with the reader's local time, so a wrong one would put a real event at a
    false time."""
    if not sentence.slots:
        return
    named = set(bodies_in(sentence.plain))
    if "eclipse" in sentence.plain.lower():
        named.add("eclipse")
    for found in sentence.slots:
        sentence.events = True
        events = t.event_bodies.get(found.instant)
        token = f"[[{found.word}:{found.instant:%Y-%m-%dT%H:%MZ}]]"
        if events is None:
            sentence.fail(token, "no event in this forecast's window happens at that time")
        elif not any(required <= named for required in events):
            sentence.fail(token, "the event at that time is not the one this sentence tells (its bodies are not named)")


def _check_in_sign(sentence: _Sentence, t: SkyTruth, body: str, sign: str, claim: str) -> None:
    if body == "south_node":
        body, sign = "north_node", _opposite(sign)
    if t.whole_sign.get(body) == sign:
        return
    if body == "moon":
        sentence.fail(claim, "the Moon's sign may be stated only when it holds for the whole window")
    else:
        sentence.fail(claim, f"{body.replace('_', ' ').title()} is not in {sign.title()} for the whole window")


def _check_mentions(sentence: _Sentence, t: SkyTruth) -> None:
    text = sentence.text
    low = text.lower()
    allowed_signs = t.named_signs | {t.sign}
    for match in MENTIONS["sign"].finditer(text):
        sign = sign_slug(match["sign"]) if match["sign"] else SIGN_ADJECTIVES[match["adj"].lower().rstrip("s")]
        if sign not in allowed_signs:
            sentence.fail(match.group(0), f"no body is in {sign.title()} in this window, nor is it the reader's sign")
    if any(stem in low for stem in ASPECT_STEMS):
        for match in MENTIONS["aspect"].finditer(text):
            name = ASPECT_OF_WORD[match["asp"].lower()]
            if name not in t.aspect_kinds:
                sentence.fail(match.group(0), f"there is no {name} among this window's aspects")
    if "house" in low:
        for match in MENTIONS["house"].finditer(text):
            if house_number(match["house"]) not in t.houses_any:
                sentence.fail(match.group(0), "no body is in that house in this window")
    for key, stems, present, reason in (
        ("retrograde", ("retrograd", "rx"), bool(t.retrograde_any), "no body is retrograde in this window"),
        ("station", ("station",), bool(t.stations), "no body stations in this window"),
        ("ingress", ("ingress",), bool(t.ingresses), "no body changes sign in this window"),
    ):
        found = MENTIONS[key].search(text) if any(stem in low for stem in stems) else None
        if found and not present:
            sentence.fail(found.group(0), reason)
    for key, ok in (
        ("waxing", t.waxing_whole),
        ("waning", t.waning_whole),
        ("crescent", t.phase_whole("crescent")),
        ("gibbous", t.phase_whole("gibbous")),
    ):
        found = MENTIONS[key].search(text) if key in low else None
        if found and not ok:
            sentence.fail(found.group(0), f"the Moon is not {key} for the whole window")
    for match in MENTIONS["unsupported"].finditer(text):
        sentence.fail(match.group(0), "not among the facts this service computes")
    if DIGIT.search(text) or "utc" in low or "gmt" in low:
        for pattern, reason in (
            (CLOCK, "clock times are not stated: the text is shared by every time zone"),
            (DEGREES, "degrees are not stated: they change during the window"),
        ):
            found = pattern.search(sentence.plain)
            if found:
                sentence.fail(found.group(0), reason)


def check(text: str, facts: list[dict], sign: str, truth: SkyTruth | None = None) -> list[Violation]:
    """Every statement in `text` that `facts` (one sign's window) do not support; [] if grounded."""
    truth = truth or sky_truth(facts, sign)
    violations: list[Violation] = []
    for part in sentences(text):
        verdict = truth.verdicts.get(part)
        if verdict is None:
            sentence = _Sentence(part)
            _check_sentence(sentence, truth)
            verdict = truth.verdicts[part] = tuple(sentence.violations)
        violations.extend(verdict)
    return violations


def check_forecast(
    headline: str,
    overview: str,
    sections: dict[str, str],
    facts: list[dict],
    sign: str,
    advice: dict[str, str] | None = None,
) -> list[Violation]:
    """`check` over every part of a forecast (headline, main reading, each topic note, Do / Don't)."""
    truth = sky_truth(facts, sign)
    parts = [headline, overview, *sections.values(), *(advice or {}).values()]
    return [violation for part in parts for violation in check(part, facts, sign, truth)]
