"""The offline composer: one true story about the reader's day, written from the phrasebook.

No network, no model. It is the embedded default, and the fallback whenever OpenAI fails or
writes something the sky does not support. It works in two steps:

1. **Plan.** Every statable fact becomes a candidate with a salience: what changes daily leads
   (stations, eclipses, lunations, ingresses, exact contacts of the Moon, Mercury, Venus and
   Mars, the Moon's change of sign), slow background (outer planets, long retrogrades) gets at
   most one sentence. The lead, one or two supporting facts and the Moon make the story.
2. **Write.** Each fact is stated by a `fact` phrasing (its plain-words sentence, with a time
   slot where it has an instant) and interpreted by a phrasing keyed by what it means (a body in
   a life area, a contact's tone, a station, a lunation). Every phrasing is chosen among those
   the sign has not read in its last 30 readings (`ReadingMemory`) and no other sign has for
   the same date; variety is prevented from repeating, not sampled.

Grounded by construction: fact phrasings state only statable facts through their placeholders
(forecasts/writing/phrasebook/README.md), every other family names no sky object, and the
finished text is checked again; a sentence that still fails is dropped and counted in
`stripped` (the year-long test requires it to stay zero).
"""

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from forecasts.topics import TOPICS
from forecasts.writing.facts import body_name, sign_name, statable_facts
from forecasts.writing.generators import Draft, ForecastRequest, ReadingMemory
from forecasts.writing.grounding import check
from forecasts.writing.phrasebook import PERSONAL, TONES, Phrasebook, Phrasing, phrasebook
from forecasts.writing.sky_claims import sentences
from forecasts.writing.sky_truth import sky_truth
from forecasts.writing.slots import slot
from forecasts.zodiac import SIGNS_BY_SLUG

logger = logging.getLogger(__name__)

TONE_OF_ASPECT = {
    "conjunction": "blend",
    "trine": "flowing",
    "sextile": "flowing",
    "square": "tense",
    "opposition": "tense",
}
# The life areas (solar houses) whose meaning a topic note may use: only those that are about
# that topic alone (the 8th mixes shared money with intimacy, the 6th is health before work).
TOPIC_AREAS: dict[str, tuple[int, ...]] = {
    "love": (5, 7),
    "career": (10,),
    "money": (2,),
    "health": (6,),
    "growth": (9,),
}
OUTER = frozenset({"jupiter", "saturn", "uranus", "neptune", "pluto", "north_node"})
FAST = frozenset({"mercury", "venus", "mars", "sun"})
STORY_WORDS = (120, 220)
# A phrasing all signs together used this often in the memory's 30 days counts as worn: another
# is chosen while one exists. 5 of 360 readings, with room for a lead that has no fresher words,
# keeps every sentence under 2% of them.
WORN = 5
BACKGROUND_WORN = 3  # background reads alike for every sign: it is skipped sooner
NOTE_WORDS = 60
# Most readers live between UTC-8 and UTC+10 and open the email around 06:00: what happens from
# about 06:00Z on the date to its end (UTC) falls after delivery for most of them. Events further
# off still count, less, the further they are.
CORE_START, CORE_END = timedelta(hours=6), timedelta(hours=24)
FADE_HOURS = 10.0


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _words(parts: Sequence[str]) -> int:
    return sum(len(part.split()) for part in parts)


@dataclass
class Item:
    """One fact the story may tell: how to state it, what it means, how much it matters."""

    fact: dict
    shape: str
    values: dict
    salience: float
    tone: str
    lead: str  # the headline family's lead
    meanings: list[tuple[str, dict]] = field(default_factory=list)  # (family, key): alternatives, in order
    background: bool = False
    extra_meaning: bool = False  # tell a second meaning too (a lunation: the phase, then its life area)


class _Composer:
    """One reading being written for a sign and date (see the module docstring)."""

    def __init__(self, request: ForecastRequest, book: Phrasebook) -> None:
        self.request = request
        self.book = book
        self.sign = request.sign
        self.info = SIGNS_BY_SLUG[request.sign]
        self.memory: ReadingMemory = request.memory
        # Seeded by (date, sign): the same reading is written again if asked twice.
        self.rng = random.Random(f"{request.day.isoformat()}:{request.sign}")  # noqa: S311 - variety, not secrecy
        self.truth = sky_truth(request.facts, request.sign)
        self.midnight = datetime.combine(request.day, time(0), tzinfo=UTC)
        self.used: list[str] = []  # phrasing ids, in order
        self.used_facts: list[str] = []

    # --- choosing phrasings -------------------------------------------------------------------

    def choose(
        self, family: str, required: bool = True, also: Sequence[dict] = (), worn: int | None = None, **key
    ) -> Phrasing | None:
        """A phrasing for one entry: among those the sign has not read lately and no other sign has
        for this date, the least used by all signs lately; else (if `required`) the least recent.
        `also` names related entries (the same topic in another tone) to draw from when the
        entry's own phrasings are more worn; the entry's own win ties. `worn`: skip phrasings all
        signs together used that often lately (for optional sentences that read alike for everyone)."""
        own = list(self.book.options(family, **key))
        self.rng.shuffle(own)
        options = own + [p for extra in also for p in self.book.options(family, **extra)]
        if not options:
            return None
        rank = {p.id: 0 if index < len(own) else 1 for index, p in enumerate(options)}
        fresh = [
            p
            for p in options
            if p.id not in self.used
            and p.id not in self.memory.recent
            and p.id not in self.memory.today
            and self.memory.counts.get(p.id, 0) < (WORN if worn is None else worn)
        ]
        if fresh:
            choice = min(fresh, key=lambda p: (self.memory.counts.get(p.id, 0), rank[p.id]))
        elif not required:
            return None
        else:
            unused = [p for p in options if p.id not in self.used] or options
            # Not another sign's today, then the longest ago for this sign, then the least worn.
            choice = min(
                unused,
                key=lambda p: (
                    p.id in self.memory.today,
                    -self.memory.recent.get(p.id, 999),
                    self.memory.counts.get(p.id, 0),
                ),
            )
        self.used.append(choice.id)
        return choice

    @staticmethod
    def other_tones(**key) -> list[dict]:
        return [{**key, "tone": tone} for tone in TONES if tone != key["tone"]]

    def area(self, house: int) -> str:
        return self.rng.choice(self.book.options("area", house=house)).text

    def say(
        self,
        family: str,
        values: dict | None = None,
        required: bool = True,
        also: Sequence[dict] = (),
        worn: int | None = None,
        **key,
    ) -> str:
        phrasing = self.choose(family, required, also, worn, **key)
        if phrasing is None:
            return ""
        text = phrasing.text.format(**(values or {})) if values else phrasing.text
        # "{Body}" written mid-sentence: "the Sun", not "The Sun".
        text = re.sub(r"(?<=[a-z,;:] )The (Sun|Moon|North Node)\b", r"the \1", text)
        return _cap(text)

    # --- planning -----------------------------------------------------------------------------

    def centrality(self, instant: datetime) -> float:
        """1 for an event in the core of most readers' day, fading to 0.4 ten hours further off."""
        start, end = self.midnight + CORE_START, self.midnight + CORE_END
        hours = max((start - instant).total_seconds(), (instant - end).total_seconds(), 0.0) / 3600.0
        return max(0.4, 1.0 - 0.6 * hours / FADE_HOURS)

    def personal_boost(self, bodies: Sequence[str], houses: Sequence[int]) -> float:
        boost = 10.0 if self.info.ruler in bodies else 0.0
        return boost + (5.0 if {1, 4, 7, 10} & set(houses) else 0.0) + self.rng.random() * 4

    def items(self) -> list[Item]:
        items: list[Item] = []
        for fact in statable_facts(self.request.facts):
            item = self.item_for(fact)
            if item is not None:
                items.append(item)
        items.extend(self.moon_items())
        return sorted(items, key=lambda item: -item.salience)

    def item_for(self, fact: dict) -> Item | None:
        kind, bodies = fact["kind"], fact.get("bodies") or []
        house = fact.get("house")
        sign = sign_name(fact["sign"]) if fact.get("sign") else ""
        when = slot("at", fact["time"]) if fact.get("time") else ""
        boost = self.personal_boost(bodies, [house] if house else fact.get("houses") or [])
        if kind == "station":
            body, direction = bodies[0], fact["direction"]
            values = {"Body": body_name(body, True), "sign": sign, "when": when, "area": self.area(house)}
            tone = "tense" if direction == "retrograde" else "blend"
            # Every sign reads a station on the same day: a contact's words with that planet
            # stand in when the station's own are worn.
            meanings = [("station", {"body": body, "direction": direction}), ("aspect", {"with": body, "tone": tone})]
            salience = 100 * self.centrality(_instant(fact["time"])) + boost
            return Item(fact, f"station_{direction}", values, salience, tone, "station", meanings)
        if kind == "eclipse":
            detail = f"{fact.get('eclipse_type')} " if fact.get("eclipse_type") else ""
            values = {"eclipse": f"{detail}{fact['eclipse']} eclipse", "sign": sign, "area": self.area(house)}
            values["when"] = when
            return Item(
                fact, "eclipse", values, 98 + boost, "blend", "eclipse", [("eclipse", {"eclipse": fact["eclipse"]})]
            )
        if kind == "lunation":
            phase = fact["phase"]
            values = {"sign": sign, "area": self.area(house), "when": when}
            major = phase in ("new_moon", "full_moon")
            meanings = [("lunation", {"phase": phase}), ("meaning", {"body": "moon", "house": house})]
            salience = (90 if major else 72) * self.centrality(_instant(fact["time"])) + boost
            tone = "blend" if major else "tense"
            return Item(fact, phase, values, salience, tone, "lunation", meanings, extra_meaning=True)
        if kind == "ingress":
            body = bodies[0]
            if body == "north_node":
                return None
            values = {"Body": body_name(body, True), "sign": sign, "area": self.area(house), "when": when}
            shape = "ingress_back" if fact.get("retrograde") else "ingress"
            if body in PERSONAL:
                meanings = [("meaning", {"body": body, "house": house})]
            else:
                meanings = [("aspect", {"with": body, "tone": "blend"})]
            salience = (82 if body in FAST else 78) * self.centrality(_instant(fact["time"])) + boost
            return Item(fact, shape, values, salience, "blend", "ingress", meanings)
        if kind == "aspect":
            return self.aspect_item(fact, boost)
        if kind == "retrograde" and bodies[0] not in ("north_node",):
            body = bodies[0]
            values = {"Body": body_name(body, True), "sign": sign, "area": self.area(house)}
            salience = 22 if body in FAST else 6
            return Item(fact, "retrograde", values, salience + boost / 4, "tense", "quiet", [], background=True)
        if kind == "body_in_sign" and bodies[0] in OUTER and not fact.get("retrograde"):
            body = bodies[0]
            values = {"Body": body_name(body, True), "sign": sign, "area": self.area(house)}
            return Item(fact, "background", values, 4 + boost / 4, "blend", "quiet", [], background=True)
        return None

    def aspect_item(self, fact: dict, boost: float) -> Item | None:
        a, b = fact["bodies"]
        if "north_node" in (a, b):
            return None
        tone = TONE_OF_ASPECT[fact["aspect"]]
        # The Moon, or the faster body, speaks first; the meaning is the other body's voice.
        if b == "moon":
            a, b = b, a
        values = {"A": body_name(a, True), "B": body_name(b)}
        other_house = self.truth.whole_house.get(b)
        if other_house:
            values["area"] = self.area(other_house)  # for the headline: where the other body acts
        meanings = [("aspect", {"with": b, "tone": tone})]
        exact_at = _instant(fact["exact_times"][0]) if fact.get("exact_times") else None
        house_a = self.house_at(a, exact_at) if exact_at else self.truth.whole_house.get(a)
        if a in PERSONAL and house_a:
            # Worn words for the contact: what the faster body means where it stands instead.
            meanings.append(("meaning", {"body": a, "house": house_a}))
        if fact.get("timing") == "event":
            exact = _instant(fact["exact_times"][0])
            values["when"] = slot("at", exact)
            if a == "moon":
                base = 46.0
            elif a in OUTER and b in OUTER:
                base = 50.0  # a slow contact leads only on the day it is exact
            elif b in OUTER:
                base = 62.0
            else:
                base = 66.0
            salience = base * self.centrality(exact) + boost
            return Item(fact, f"aspect_exact_{tone}", values, salience, tone, "aspect", meanings)
        if a == "moon":
            return None  # the Moon's contacts pass within hours: only their exact moment is told
        slow = a in OUTER and b in OUTER
        salience = (3.0 if slow else 28.0) + boost / 2
        return Item(fact, f"aspect_state_{tone}", values, salience, tone, "aspect", meanings, background=slow)

    def instant_of(self, item: Item) -> datetime:
        """When an item happens (a state: the start of the window), to tell events in time order."""
        fact = item.fact
        value = fact.get("time") or (fact.get("exact_times") or [None])[0] or fact.get("valid_from")
        return _instant(value) if value else self.midnight

    def house_at(self, body: str, instant: datetime) -> int | None:
        """The body's house at `instant`, from the state facts that cover it."""
        for fact in self.request.facts:
            if (
                fact["kind"] in ("body_in_sign", "moon_sign")
                and fact["bodies"] == [body]
                and _instant(fact["valid_from"]) <= instant < _instant(fact["valid_until"])
            ):
                return fact["house"]
        return None

    def moon_items(self) -> list[Item]:
        """The Moon's sign for the day: a state when it keeps one sign, else each change of sign."""
        facts = self.request.facts
        moon_whole = self.truth.whole_sign.get("moon")
        if moon_whole:
            fact = next(f for f in facts if f["kind"] == "moon_sign")
            house = fact["house"]
            values = {"sign": sign_name(moon_whole), "area": self.area(house)}
            meanings = [("meaning", {"body": "moon", "house": house})]
            return [
                Item(
                    fact, "moon_stay", values, 48 + self.personal_boost(["moon"], [house]), "flowing", "moon", meanings
                )
            ]
        items = []
        for fact in facts:
            if fact["kind"] != "moon_ingress" or not fact.get("time"):
                continue
            house = fact["house"]
            values = {
                "sign": sign_name(fact["sign"]),
                "area": self.area(house),
                "from_area": self.area((house - 2) % 12 + 1),
                "when": slot("at", fact["time"]),
            }
            meanings = [("meaning", {"body": "moon", "house": house})]
            salience = 54 * self.centrality(_instant(fact["time"])) + self.personal_boost(["moon"], [house])
            items.append(Item(fact, "moon_ingress", values, salience, "flowing", "moon", meanings))
        return items

    # --- writing ------------------------------------------------------------------------------

    def state(self, item: Item) -> str:
        # Background reads the same for every sign for weeks: told only while its words are fresh.
        text = self.say(
            "fact",
            item.values,
            required=not item.background,
            worn=BACKGROUND_WORN if item.background else None,
            shape=item.shape,
        )
        if text and item.fact.get("id") and item.fact["id"] not in self.used_facts:
            self.used_facts.append(item.fact["id"])
        return text

    def interpret(self, item: Item, required: bool = True) -> list[str]:
        """What the item means for the day: its first meaning with fresh words, trying each in
        turn; a second one (a lunation's area) only when it too is fresh."""
        out = []
        for family, key in item.meanings:
            text = self.say(family, required=False, **key)
            if text:
                out.append(text)
                if not item.extra_meaning:
                    return out
        if not out and required and item.meanings:
            family, key = item.meanings[0]
            out.append(self.say(family, **key))
        return out

    def story(self, items: list[Item]) -> tuple[str, Item | None, str]:
        """The main reading (paragraphs), its lead item and its tone."""
        told = [item for item in items if not item.background]
        background = [item for item in items if item.background]
        lead = told[0] if told else (background[0] if background else None)
        if lead is None:
            text = self.say("phase", phase=self.truth.phase_at_start or "waxing_crescent") + " "
            return (text + self.say("closing", tone="flowing")).strip(), None, "flowing"
        first = [self.state(lead), *self.interpret(lead)]
        told_items: list[tuple[Item, list[str]]] = []  # the supporting facts, told in time order below

        def words() -> int:
            return _words(first + [text for _, texts in told_items for text in texts])

        def tell(item: Item) -> None:
            told_items.append((item, [self.state(item), *self.interpret(item, required=False)[:1]]))

        moon = next((item for item in told if item.fact["kind"] in ("moon_sign", "moon_ingress")), None)
        lead_bodies = set(lead.fact.get("bodies") or [])
        for item in told[1:]:
            if told_items or words() > 95 or item.salience < 20:
                break
            if item is not moon and set(item.fact.get("bodies") or []) != lead_bodies:
                tell(item)
        if moon is not None and moon is not lead and all(item is not moon for item, _ in told_items):
            tell(moon)  # the Moon's sign frames the day
        closing = [self.say("closing", tone=lead.tone, also=self.other_tones(tone=lead.tone))]
        if background and words() < 165:
            closing.insert(0, self.state(background[0]))
        if words() + _words(closing) < STORY_WORDS[0]:
            closing.insert(-1, self.say("phase", required=False, phase=self.truth.phase_at_start or "waxing_crescent"))
        for item in told[1:]:
            if words() + _words(closing) >= STORY_WORDS[0] + 5:
                break
            if all(item is not other for other, _ in told_items):
                tell(item)
        told_items.sort(key=lambda pair: self.instant_of(pair[0]))
        second = [text for _, texts in told_items for text in texts]
        paragraphs = [" ".join(p for p in part if p) for part in (first, second, closing)]
        return "\n\n".join(p for p in paragraphs if p), lead, lead.tone

    def note(self, topic: str, tone: str) -> str:
        """A short note on one topic: what the day's sky means for that part of life, and one step."""
        parts = []
        areas = TOPIC_AREAS[topic]
        for body in ("venus", "mars", "mercury", "sun", "moon"):
            house = self.truth.whole_house.get(body)
            if house in areas:
                text = self.say("meaning", required=False, body=body, house=house)
                if text:
                    parts.append(text)
                    break
        parts.append(self.say("advice", topic=topic, tone=tone, also=self.other_tones(topic=topic, tone=tone)))
        if _words(parts) > NOTE_WORDS:
            parts = parts[-1:]
        return " ".join(parts)

    def headline(self, lead: Item | None) -> str:
        recent = set(self.memory.headlines) | set(self.memory.today_headlines)
        leads = [lead.lead] if lead else []
        values = dict(lead.values) if lead else {}
        values.setdefault("area", self.area(self.truth.whole_house.get("sun") or 1))
        values.setdefault("sign", "")
        values.setdefault("Body", "")
        for family_lead in [*leads, "moon", "aspect", "quiet"]:
            options = list(self.book.options("headline", lead=family_lead))
            self.rng.shuffle(options)
            options.sort(key=lambda p: p.id in self.memory.recent)
            for phrasing in options:
                if family_lead != (lead.lead if lead else "") and (
                    "{Body}" in phrasing.text or "{sign}" in phrasing.text
                ):
                    continue
                text = _cap(phrasing.text.format(**values))
                text = re.sub(r"(?<=[a-z,;:] )The (Sun|Moon|North Node)\b", r"the \1", text)
                if text not in recent:
                    self.used.append(phrasing.id)
                    return text
        return f"{self.info.name}: {values['area']} in focus"

    def write(self) -> Draft:
        items = self.items()
        story, lead, tone = self.story(items)
        sections = {topic: self.note(topic, tone) for topic in TOPICS}
        advice = {
            "do": self.say("do", tone=tone, also=self.other_tones(tone=tone)),
            "dont": self.say("dont", tone=tone, also=self.other_tones(tone=tone)),
        }
        return Draft(
            headline=self.headline(lead),
            overview=story,
            sections=sections,
            advice=advice,
            facts_used=list(self.used_facts),
            passages_used=[],
            phrasings=list(self.used),
            model_name="offline-composer",
        )


class OfflineComposer:
    """Writes readings without a model (see the module docstring)."""

    name = "offline"

    def __init__(self, book: Phrasebook | None = None) -> None:
        self.book = book
        self.stripped = 0  # sentences dropped by the final check (should stay 0)

    def generate(self, request: ForecastRequest, feedback: Sequence[str] = ()) -> Draft:
        draft = _Composer(request, self.book or phrasebook()).write()
        return self._enforce(draft, request)

    def _enforce(self, draft: Draft, request: ForecastRequest) -> Draft:
        """Drop any sentence the checker still rejects (a safety net; see `stripped`)."""
        truth = sky_truth(request.facts, request.sign)

        def clean(text: str) -> str:
            paragraphs = []
            for paragraph in text.split("\n\n"):
                kept = []
                for sentence in sentences(paragraph):
                    problems = check(sentence, request.facts, request.sign, truth)
                    if problems:
                        logger.warning("Offline composer dropped a sentence: %s", "; ".join(map(str, problems)))
                        self.stripped += 1
                    else:
                        kept.append(sentence.strip())
                if kept:
                    paragraphs.append(" ".join(kept))
            return "\n\n".join(paragraphs)

        if check(draft.headline, request.facts, request.sign, truth):
            self.stripped += 1
            draft.headline = f"{sign_name(request.sign)}: the shape of the day"
        draft.overview = clean(draft.overview)
        draft.sections = {topic: clean(text) for topic, text in draft.sections.items()}
        draft.advice = {key: clean(text) for key, text in draft.advice.items()}
        return draft
