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
"""

import hashlib
import json
import re
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from forecasts.writing.slots import parse_instant, slots_in
from forecasts.zodiac import SIGN_SLUGS

SIGNS = SIGN_SLUGS  # forecasts.zodiac is the one list of signs
SIGN_ADJECTIVES = {
    "arian": "aries",
    "taurean": "taurus",
    "geminian": "gemini",
    "cancerian": "cancer",
    "leonine": "leo",
    "virgoan": "virgo",
    "libran": "libra",
    "scorpionic": "scorpio",
    "sagittarian": "sagittarius",
    "capricornian": "capricorn",
    "aquarian": "aquarius",
    "piscean": "pisces",
}
BODY_WORDS = {
    "sun": "sun",
    "moon": "moon",
    "mercury": "mercury",
    "venus": "venus",
    "mars": "mars",
    "jupiter": "jupiter",
    "saturn": "saturn",
    "uranus": "uranus",
    "neptune": "neptune",
    "pluto": "pluto",
    "north node": "north_node",
    "lunar node": "north_node",
    "lunar nodes": "north_node",
    "moon's nodes": "north_node",
    "nodes of the moon": "north_node",
    "south node": "south_node",
}
STATION_BODIES = ("mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto")
ASPECT_FORMS = {
    "conjunction": ("conjunctions", "conjunction", "conjunct", "conjoins", "conjoin", "conjoined", "conjoining"),
    "sextile": ("sextiles", "sextile", "sextiling", "sextiled"),
    "square": ("squares", "square", "squaring", "squared"),
    "trine": ("trines", "trine", "trining", "trined"),
    "opposition": ("oppositions", "opposition", "opposes", "opposing", "opposed"),
}
ASPECT_OF_WORD = {form: name for name, forms in ASPECT_FORMS.items() for form in forms}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
}
WAXING_PHASES = {"waxing_crescent", "first_quarter", "waxing_gibbous"}
WANING_PHASES = {"waning_gibbous", "last_quarter", "waning_crescent"}
UNSUPPORTED = (
    "chiron",
    "lilith",
    "black moon",
    "ceres",
    "pallas",
    "juno",
    "vesta",
    "eris",
    "vertex",
    "part of fortune",
    "ascendant",
    "descendant",
    "midheaven",
    "rising sign",
    "void of course",
    "void-of-course",
    "out of bounds",
    "out-of-bounds",
    "supermoon",
    "super moon",
    "micromoon",
    "blue moon",
    "blood moon",
)


def _alternation(words) -> str:
    return "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in sorted(words, key=len, reverse=True))


_BODY = rf"\b(?:the\s+)?(?:{_alternation(BODY_WORDS)})\b"
_BODY_LIST = rf"{_BODY}(?:\s*(?:,|and|&|,\s*and)\s*{_BODY})*"
_SIGN = rf"\b(?:{_alternation(SIGNS)})(?:'s|s)?\b"
_ASPECT = rf"\b(?:{_alternation(ASPECT_OF_WORD)})\b"
# "Venus opposite Mars" is a claim, but "opposite" alone is ordinary English, not an aspect word.
CLAIM_ASPECT_OF_WORD = {**ASPECT_OF_WORD, "opposite": "opposition"}
_CLAIM_ASPECT = rf"\b(?:{_alternation(CLAIM_ASPECT_OF_WORD)})\b"
_HOUSE = rf"\b(?:{_alternation(ORDINALS)}|1[0-2](?:st|nd|rd|th)|[1-9](?:st|nd|rd|th))\s+house\b"
_WORD = r"[\w'-]+\s+"
_APPOSITIVE = r"(?:\s*,[^,.;:!?#]{1,60},)?"

# Up to four words a state claim may put between a body and "in <Sign>" ("Venus, the planet of
# love, is still comfortably in Pisces"); another body ends the claim.
_STATE_FILLER = rf"(?:(?!{_BODY}|your\b)[\w'-]+\s+){{0,4}}"
_IN = (
    r"(?:in|through|transiting|transits|tours|touring|occupies|occupying|visits|visiting)\s+"
    r"(?:the\s+(?:sign\s+of\s+)?)?"
)
_INGRESS_VERB = (
    r"(?:enters?|entering|entry\s+into|ingress(?:es)?(?:\s+into)?|"
    r"(?:moves?|moving|slips?|slipping|steps?|stepping|glides?|gliding|crosses?|crossing|heads?|heading|"
    r"shifts?|shifting|arrives?|arriving|returns?|returning|retreats?|retreating|backs?|backing|dips?|"
    r"dipping|passes|passing|changes\s+sign|changing\s+signs?)\s+(?:back\s+)?(?:into|to|in)|into)\s+"
    r"(?:the\s+sign\s+of\s+)?"
)
_DEICTIC = re.compile(
    r"\b(?:today|today's|tonight|tonight's|this\s+(?:morning|afternoon|evening|night)|right\s+now|yesterday|"
    r"tomorrow|midnight|noon|(?:on\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)(?!\w)|\b(?:utc|gmt)\b", re.IGNORECASE)
_DEGREES = re.compile(r"\d+(?:\.\d+)?\s*(?:°|º|degrees?\b|deg\b)|\borbs?\s+(?:of\s+)?\d", re.IGNORECASE)

PATTERNS = {
    "lunation": re.compile(
        rf"\b(?P<phase>new|full)\s+moons?\b(?:\s+(?:{_WORD}){{0,2}}?(?:in|of)\s+(?P<sign>{_SIGN}))?", re.IGNORECASE
    ),
    "quarter": re.compile(
        rf"\b(?P<phase>first|last|third|final|1st|3rd|half|quarter)\s+(?:quarter\s+moons?|quarter|moons?)\b"
        rf"(?:\s+(?:{_WORD}){{0,2}}?in\s+(?P<sign>{_SIGN}))?",
        re.IGNORECASE,
    ),
    "eclipse": re.compile(
        rf"\b(?:(?P<ekind>solar|lunar)\s+)?eclipses?\b(?:\s+(?:{_WORD}){{0,2}}?in\s+(?P<sign>{_SIGN}))?", re.IGNORECASE
    ),
    "season": re.compile(rf"(?P<sign>{_SIGN})\s+season\b", re.IGNORECASE),
    "ingress": re.compile(
        rf"(?P<bodies>{_BODY_LIST})(?:'s)?\s+(?:{_WORD}){{0,3}}?{_INGRESS_VERB}"
        rf"(?:(?P<sign>{_SIGN})|your\s+(?P<house>{_HOUSE}))",
        re.IGNORECASE,
    ),
    "station": re.compile(
        rf"(?P<body>{_BODY})(?:'s)?\s+(?P<pred>(?:{_WORD}){{0,2}}?(?:"
        r"(?:stations?|stationing|turns?|turning|goes|going|went|shifts?|shifting)\s+(?P<dir>retrograde|direct)|"
        r"(?P<dir2>retrograde|direct)\s+station|"
        r"(?:ends?|ending|finishes|finishing|wraps\s+up|concludes?)\s+(?:its\s+|their\s+|a\s+|the\s+)?(?P<end>retrograde)|"
        r"(?:begins?|beginning|starts?|starting)\s+(?:its\s+|their\s+|a\s+|the\s+)?(?P<begin>retrograde)|"
        r"retrograde\s+(?:(?P<end2>ends|ending|finishes|is\s+over|wraps\s+up)|(?P<begin2>begins|starts))|"
        r"stations?\b|stationing|stationary|stands?\s+still|standing\s+still))",
        re.IGNORECASE,
    ),
    "retrograde": re.compile(
        rf"(?P<body>{_BODY})(?:'s)?\s+(?P<pred>(?:(?:is|are|remains?|stays?|still|now|currently|being|also|both|was|"
        r"has\s+been|continues?\s+to\s+be|moving|moves|travels?|travell?ing|goes|appears|appearing|seems)\s+){0,3}"
        r"(?:retrograde|rx))\b",
        re.IGNORECASE,
    ),
    "retrograde_before": re.compile(rf"\b(?P<pred>retrograde)\s+(?P<body>{_BODY})", re.IGNORECASE),
    "direct": re.compile(
        rf"(?P<body>{_BODY})(?:'s)?\s+(?P<pred>(?:(?:is|are|remains?|stays?|still|now|currently|once\s+again|again|"
        r"back|moving|moves|travels?|goes|going|was)\s+){0,3}direct)\b",
        re.IGNORECASE,
    ),
    "aspect_between": re.compile(
        rf"(?P<asp>{_ASPECT})\s+(?:between|of|from|linking|joining|connecting)\s+(?P<a>{_BODY})\s+"
        rf"(?:and|&|to|with)\s+(?P<b>{_BODY})",
        re.IGNORECASE,
    ),
    "aspect_pair": re.compile(
        rf"(?P<a>{_BODY})\s+(?:and|&)\s+(?P<b>{_BODY})\s+(?:{_WORD}){{0,3}}?(?:an?\s+)?(?P<asp>{_ASPECT})"
        rf"(?:\s+(?:or|and)\s+(?:an?\s+)?(?P<asp2>{_ASPECT}))?",
        re.IGNORECASE,
    ),
    "aspect": re.compile(
        rf"(?P<a>{_BODY})\s+(?:(?:is|are|now|exactly|forms?|forming|makes?|making|in|an?|casts?|casting|still|also|"
        rf"tightly|closely)\s+){{0,3}}(?P<asp>{_CLAIM_ASPECT})(?:\s+(?:to|with|of))?\s+(?P<b>{_BODY})",
        re.IGNORECASE,
    ),
    "meet": re.compile(
        rf"(?P<a>{_BODY})\s+(?:and|&)\s+(?P<b>{_BODY})\s+(?:(?:are|now|both|finally)\s+)?(?P<asp>meet|meeting|"
        r"together|come\s+together|coming\s+together|unite|uniting|join\s+forces|joining\s+forces|merge|merging)\b|"
        rf"(?P<a2>{_BODY})\s+(?P<asp2>meets|joins|unites\s+with|merges\s+with)\s+(?P<b2>{_BODY})",
        re.IGNORECASE,
    ),
    # Any body followed within a few words by "your <n>th house" places it there ("the Moon
    # crosses your eighth house", "Venus brings charm to your first house").
    "house": re.compile(
        rf"(?P<bodies>{_BODY_LIST})(?:'s)?{_APPOSITIVE}\s+{_STATE_FILLER}(?:[\w'-]+\s+)?your\s+(?P<house>{_HOUSE})",
        re.IGNORECASE,
    ),
    "in_sign": re.compile(
        rf"(?P<bodies>{_BODY_LIST})(?:'s)?{_APPOSITIVE}\s+{_STATE_FILLER}{_IN}(?P<sign>{_SIGN})", re.IGNORECASE
    ),
    "sign_body": re.compile(rf"(?P<sign>{_SIGN})\s+(?P<body>{_BODY})", re.IGNORECASE),
}
MENTIONS = {
    "sign": re.compile(rf"(?P<sign>{_SIGN})|\b(?P<adj>{_alternation(SIGN_ADJECTIVES)})s?\b", re.IGNORECASE),
    "aspect": re.compile(rf"(?P<asp>{_ASPECT})", re.IGNORECASE),
    "house": re.compile(rf"(?P<house>{_HOUSE})", re.IGNORECASE),
    "retrograde": re.compile(r"\b(?:retrograde|retrogrades|retrograding|rx)\b", re.IGNORECASE),
    "station": re.compile(r"\b(?:station|stations|stationing|stationary)\b", re.IGNORECASE),
    "ingress": re.compile(r"\bingress(?:es)?\b", re.IGNORECASE),
    "waxing": re.compile(r"\bwaxing\b", re.IGNORECASE),
    "waning": re.compile(r"\bwaning\b", re.IGNORECASE),
    "crescent": re.compile(r"\bcrescent\b", re.IGNORECASE),
    "gibbous": re.compile(r"\bgibbous\b", re.IGNORECASE),
    "unsupported": re.compile(rf"\b(?:{_alternation(UNSUPPORTED)})\b", re.IGNORECASE),
}
_ANY_BODY = re.compile(_BODY, re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_ANY_SIGN = re.compile(_SIGN, re.IGNORECASE)
_ASPECT_STEMS = ("conjun", "sextil", "squar", "trin", "oppos")
_MEET_STEMS = ("meet", "together", "unit", "join", "merg")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+|\n+")


@dataclass(frozen=True)
class Violation:
    """One statement the facts do not support."""

    sentence: str
    claim: str
    reason: str

    def __str__(self) -> str:
        return f"{self.claim!r}: {self.reason}"


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


def _body_slug(text: str) -> str:
    words = " ".join(text.lower().replace("’", "'").split())
    words = words.removeprefix("the ")
    return BODY_WORDS.get(words, words)


def _bodies_in(text: str) -> list[str]:
    return [_body_slug(match.group(0)) for match in re.finditer(_BODY, text, re.IGNORECASE)]


def _sign_slug(text: str) -> str:
    word = text.lower().replace("’", "'").removesuffix("'s")
    if word not in SIGNS and word.endswith("s") and word[:-1] in SIGNS:
        word = word[:-1]
    return word


def _house_number(text: str) -> int:
    word = text.lower().split()[0]
    return ORDINALS.get(word) or int(re.sub(r"\D", "", word))


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


def _gates(text: str) -> set[str]:
    """Which patterns can possibly match (cheap substring tests keep the checker fast)."""
    low = text.lower()
    gates = set()
    if "moon" in low:
        gates.add("lunation")
    if "quarter" in low or "half" in low:
        gates.add("quarter")
    if "eclipse" in low:
        gates.add("eclipse")
    has_sign = bool(_ANY_SIGN.search(text))
    if has_sign and "season" in low:
        gates.add("season")
    if not _ANY_BODY.search(text):
        return gates
    gates.add("ingress")
    if any(word in low for word in ("station", "retrograde", "direct", "still")):
        gates.add("station")
    if "retrograde" in low or "rx" in low:
        gates.update(("retrograde", "retrograde_before"))
    if "direct" in low:
        gates.add("direct")
    if any(stem in low for stem in _ASPECT_STEMS):
        gates.update(("aspect_between", "aspect_pair", "aspect"))
    if any(stem in low for stem in _MEET_STEMS):
        gates.add("meet")
    if "house" in low:
        gates.add("house")
    if has_sign:
        gates.update(("in_sign", "sign_body"))
    return gates


def _matches(key: str, sentence: _Sentence, gates: set[str]):
    return PATTERNS[key].finditer(sentence.text) if key in gates else ()


def _check_sentence(sentence: _Sentence, truth: SkyTruth) -> None:
    t = truth
    gates = _gates(sentence.text)
    for match in _matches("lunation", sentence, gates):
        phase = f"{match['phase'].lower()}_moon"
        sign = _sign_slug(match["sign"]) if match["sign"] else ""
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
        sign = _sign_slug(match["sign"]) if match["sign"] else ""
        sentence.events = True
        if not any(p in phases and (not sign or s == sign) for p, s in t.lunations):
            sentence.fail(match.group(0), "no such quarter Moon in this forecast's window")
        sentence.mask(*match.span())
    for match in _matches("eclipse", sentence, gates):
        kind = (match["ekind"] or "").lower()
        sign = _sign_slug(match["sign"]) if match["sign"] else ""
        sentence.events = True
        if not any((not kind or k == kind) and (not sign or s == sign) for k, s in t.eclipses):
            sentence.fail(match.group(0), "no such eclipse in this forecast's window")
        sentence.mask(*match.span())
    for match in _matches("season", sentence, gates):
        sign = _sign_slug(match["sign"])
        if t.whole_sign.get("sun") != sign:
            sentence.fail(match.group(0), f"the Sun is not in {sign.title()} for the whole window")
        sentence.mask(*match.span())
    for match in _matches("ingress", sentence, gates):
        house = _house_number(match["house"]) if match["house"] else 0
        sign = _sign_slug(match["sign"]) if match["sign"] else _house_sign(house, t.sign)
        sentence.events = True
        for body in _bodies_in(match["bodies"]):
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
        body = _body_slug(match["body"])
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
            body = _body_slug(match["body"])
            if body in ("north_node", "south_node"):
                pass  # the nodes always move backwards
            elif body not in t.retrograde_whole:
                sentence.fail(match.group(0), f"{body.title()} is not retrograde for the whole window")
            sentence.mask(*match.span("pred"))
    for match in _matches("direct", sentence, gates):
        body = _body_slug(match["body"])
        if body not in t.direct_whole:
            sentence.fail(match.group(0), f"{body.title()} is not direct for the whole window")
        sentence.mask(*match.span("pred"))
    for key in ("aspect_between", "aspect_pair", "aspect", "meet"):
        for match in _matches(key, sentence, gates):
            groups = match.groupdict()
            a, b = groups.get("a") or groups.get("a2"), groups.get("b") or groups.get("b2")
            pair = frozenset({_body_slug(a), _body_slug(b)})
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
        house = _house_number(match["house"])
        for body in _bodies_in(match["bodies"]):
            if body == "south_node":
                body, house = "north_node", (house + 5) % 12 + 1
            if t.whole_house.get(body) != house:
                sentence.fail(match.group(0), f"{body.title()} is not in your house {house} for the whole window")
        sentence.mask(*match.span("house"))
    for match in _matches("in_sign", sentence, gates):
        sign = _sign_slug(match["sign"])
        for body in _bodies_in(match["bodies"]):
            _check_in_sign(sentence, t, body, sign, match.group(0))
        sentence.mask(*match.span("sign"))
    for match in _matches("sign_body", sentence, gates):
        _check_in_sign(sentence, t, _body_slug(match["body"]), _sign_slug(match["sign"]), match.group(0))
        sentence.mask(*match.span("sign"))
    _check_mentions(sentence, t)
    _check_slots(sentence, t)
    if sentence.events:
        found = _DEICTIC.search(sentence.plain)
        if found:
            sentence.fail(
                found.group(0),
                "an event in this window falls on different local dates in different zones: do not date it",
            )


_PAIR_HOUSES = re.compile(
    rf"\s*,?\s*(?:[\w'-]+\s+){{0,6}}?(?:(?:in|across|through)\s+your\s+(?P<one>{_HOUSE})|"
    rf"between\s+your\s+(?P<first>{_HOUSE})\s+and\s+your\s+(?P<second>{_HOUSE}))",
    re.IGNORECASE,
)


def _check_pair_houses(sentence: _Sentence, t: SkyTruth, pair: frozenset, end: int) -> None:
    """'Venus trine Saturn ... in your first house' / 'between your first and fifth house' places both."""
    found = _PAIR_HOUSES.match(sentence.text, end)
    if not found:
        return
    if found["one"]:
        wanted = {_house_number(found["one"])}
    else:
        wanted = {_house_number(found["first"]), _house_number(found["second"])}
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
    named = set(_bodies_in(sentence.plain))
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
        sign = _sign_slug(match["sign"]) if match["sign"] else SIGN_ADJECTIVES[match["adj"].lower().rstrip("s")]
        if sign not in allowed_signs:
            sentence.fail(match.group(0), f"no body is in {sign.title()} in this window, nor is it the reader's sign")
    if any(stem in low for stem in _ASPECT_STEMS):
        for match in MENTIONS["aspect"].finditer(text):
            name = ASPECT_OF_WORD[match["asp"].lower()]
            if name not in t.aspect_kinds:
                sentence.fail(match.group(0), f"there is no {name} among this window's aspects")
    if "house" in low:
        for match in MENTIONS["house"].finditer(text):
            if _house_number(match["house"]) not in t.houses_any:
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
    if _DIGIT.search(text) or "utc" in low or "gmt" in low:
        for pattern, reason in (
            (_CLOCK, "clock times are not stated: the text is shared by every time zone"),
            (_DEGREES, "degrees are not stated: they change during the window"),
        ):
            found = pattern.search(sentence.plain)
            if found:
                sentence.fail(found.group(0), reason)


def sentences(text: str) -> list[str]:
    """The text split into sentences (and lines)."""
    return [part for part in _SENTENCE_END.split(text or "") if part and part.strip()]


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
