"""The offline composer: a readable, varied forecast written from the facts and passages alone.

No network, no model. It is the embedded default, and the fallback whenever OpenAI fails or
writes something the sky does not support. It is grounded by construction:

- its own sentences are built only from statable facts (forecasts/writing/prompts.py), states phrased
  as states and events as "around this date", never dated;
- a passage is woven in only if the grounding checker finds nothing in it the facts do not
  support (a passage about "the Sun in Taurus" is skipped on the day the Sun leaves Taurus);
- the finished text is checked again, and any sentence that still fails is dropped (counted in
  `stripped`; the year-long test requires it to stay zero).

Variety comes from the sky itself (which facts lead, which passages fit) and from openings,
transitions, clauses and tips drawn with a random generator seeded by (date, sign), so the
same forecast is written again if asked twice.
"""

import logging
import random
import re
from collections.abc import Sequence

from forecasts.topics import TOPICS
from forecasts.writing.generators import Draft, ForecastRequest
from forecasts.writing.grounding import check, sentences, sky_truth
from forecasts.writing.knowledge import PassageDoc
from forecasts.writing.prompts import (
    TOPIC_BODIES,
    TOPIC_HOUSES,
    body_name,
    house_phrase,
    moon_phase_state,
    sign_name,
    statable_facts,
)
from forecasts.zodiac import SIGNS_BY_SLUG

logger = logging.getLogger(__name__)

HOUSE_THEMES = {
    1: "self, body and first impressions",
    2: "money, possessions and self-worth",
    3: "conversations, learning and short trips",
    4: "home, family and roots",
    5: "romance, creativity and play",
    6: "health, work and daily routines",
    7: "partnerships and close allies",
    8: "shared resources, trust and intimacy",
    9: "travel, study and big ideas",
    10: "career, reputation and goals",
    11: "friends, groups and hopes",
    12: "rest, reflection and what stays private",
}
HOUSE_AREAS = {
    1: "self-image",
    2: "finances",
    3: "conversations",
    4: "home life",
    5: "love life and play",
    6: "daily routines",
    7: "partnerships",
    8: "shared resources",
    9: "wider horizons",
    10: "career",
    11: "friendships",
    12: "inner life",
}
BODY_THEMES = {
    "sun": "purpose and vitality",
    "moon": "moods and needs",
    "mercury": "words, plans and messages",
    "venus": "love, pleasure and money",
    "mars": "drive and courage",
    "jupiter": "growth and good fortune",
    "saturn": "duty, limits and structure",
    "uranus": "change and surprise",
    "neptune": "dreams and intuition",
    "pluto": "deep change and power",
    "north_node": "direction and purpose",
}
RETROGRADE_ADVICE = {
    "mercury": "double-check messages, bookings and plans before you commit",
    "venus": "revisit what and whom you truly value before buying or promising",
    "mars": "redirect your effort rather than force a stuck door",
    "jupiter": "let growth happen inwardly before you expand outwardly",
    "saturn": "review your commitments and shore up weak foundations",
    "uranus": "let change work quietly instead of breaking things suddenly",
    "neptune": "check comfortable assumptions gently against the facts",
    "pluto": "let an old pattern loosen its grip at its own pace",
}
ASPECT_WORD = {
    "conjunction": "conjunct",
    "sextile": "sextile",
    "square": "square",
    "trine": "trine",
    "opposition": "opposes",
}
# After "With": "With Mars opposite Uranus" (not "opposes").
ASPECT_WITH = {**ASPECT_WORD, "opposition": "opposite"}
ASPECT_THEMES = {
    "conjunction": "their themes fuse and amplify each other",
    "sextile": "a small, willing effort opens a door",
    "trine": "things flow with less friction than usual",
    "square": "friction asks for a practical adjustment",
    "opposition": "balance between two pulls is the task",
}
PHASE_LABELS = {
    "new_moon": "new Moon",
    "full_moon": "full Moon",
    "first_quarter": "first quarter Moon",
    "last_quarter": "last quarter Moon",
}

OPENINGS = (
    "{sign}, here is the sky as it leans on your chart around this date.",
    "Take a breath, {sign}: a few clear threads run through the sky for you.",
    "{sign}, the planets put a particular emphasis on your chart in these days.",
    "There is a shape to the sky around this date, {sign}, and it is worth reading closely.",
    "{sign}, a quick look at the sky shows where your attention will pay off.",
    "The sky has a story for you, {sign}, and it starts with one strong theme.",
    "{sign}, think of these days as a chance to work with the sky rather than against it.",
    "Here is your sky, {sign}: what is moving, what is steady, and how to use it.",
    "{sign}, your {element} nature meets an interesting sky around this date.",
    "Some days the sky whispers; around this date it speaks plainly to you, {sign}.",
)
TRANSITIONS = (
    "Alongside this, ",
    "Meanwhile, ",
    "In the background, ",
    "At the same time, ",
    "Just as importantly, ",
    "Beneath that, ",
    "There is a second thread too: ",
    "Keep in mind as well that ",
)
PROFILE_LEADS = (
    "As {a_sign}, remember this: ",
    "It helps to know your own nature here. ",
    "Your sign's gifts matter now. ",
    "Lean on what {sign} does best. ",
)
CLOSINGS = (
    "Take what fits and leave the rest; the sky suggests, you decide.",
    "Move at your own pace and let the useful parts of this sky carry you.",
    "Small, deliberate choices will get the most out of these days.",
    "Trust your own judgement first; the sky only sets the weather.",
    "Keep it simple, stay curious, and notice what shifts.",
    "Be kind to yourself while the sky does its slow work.",
)
SECTION_LEADS = {
    "love": ("In matters of the heart, ", "For love and friendship, ", "Close to home and heart, "),
    "career": ("At work, ", "For your ambitions, ", "On the career front, "),
    "money": ("Money-wise, ", "For your finances, ", "Where money is concerned, "),
    "health": ("For your energy, ", "For body and rest, ", "On the wellbeing side, "),
    "growth": ("For your inner growth, ", "On the longer road, ", "For mind and meaning, "),
}
QUIET_SECTION = {
    "love": "No single planet dominates your love life around this date, which leaves room for plain kindness.",
    "career": "Work is not under a strong spotlight around this date, so steady, unglamorous progress counts.",
    "money": "Money matters are quiet in the sky around this date; a calm look at your budget is enough.",
    "health": "Your wellbeing is not singled out by the sky around this date; ordinary good habits carry you.",
    "growth": "No single transit drives your inner growth around this date, so follow your own curiosity.",
}
TIPS = {
    "love": (
        "Say the warm thing you usually leave unsaid.",
        "Listen for what someone needs, not only what they say.",
        "Make a small plan with someone you miss.",
        "Let affection be simple: a message, a meal, an hour of attention.",
        "Notice who leaves you feeling lighter, and spend time there.",
        "Ask one honest question and really hear the answer.",
        "Give a little more patience than feels natural.",
        "A shared laugh will do more than a long talk.",
    ),
    "career": (
        "Finish one task completely before opening another.",
        "Write down the next three steps of the project that matters most.",
        "Share credit generously; it comes back.",
        "Ask for the information you need rather than guessing.",
        "Protect an hour for focused work and guard it.",
        "Tidy a process that wastes everyone's time.",
        "Follow up on the thing you promised someone.",
        "Keep meetings short and decisions clear.",
    ),
    "money": (
        "Check one recurring payment you no longer use.",
        "Sleep on any purchase you would not have wanted yesterday.",
        "Put a small amount aside, even if it is symbolic.",
        "Compare before you commit; the second quote is often better.",
        "Spend on what lasts rather than what flatters.",
        "Write down where the money went this week.",
        "Say no to a cost that only feeds someone else's plan.",
        "Value your time as carefully as your money.",
    ),
    "health": (
        "Drink water before coffee and notice the difference.",
        "A brisk walk clears more than it costs.",
        "Go to bed a little earlier than you think you need.",
        "Stretch whenever you stand up.",
        "Eat one meal slowly and without a screen.",
        "Breathe out longer than you breathe in when tension builds.",
        "Move in a way that feels like play, not punishment.",
        "Step outside for ten minutes of daylight.",
    ),
    "growth": (
        "Read something outside your usual interests.",
        "Write one paragraph about what you have learned lately.",
        "Ask yourself what you would try if nobody were watching.",
        "Let one old grudge go quietly.",
        "Notice a habit that no longer fits who you are becoming.",
        "Spend a few minutes in silence and see what surfaces.",
        "Teach someone something you know well.",
        "Choose one small act of courage and do it.",
    ),
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def with_article(name: str) -> str:
    """'an Aries', 'a Leo': the article goes by the sound, and every sign that starts with a vowel starts with one."""
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


def _first_sentences(text: str, count: int) -> str:
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(parts[:count])


def _continuing(sentence: str) -> str:
    """A sentence made to follow a lead-in ("Meanwhile, the Sun..."): common first words go lower case."""
    first = sentence.split(" ", 1)[0]
    return sentence[:1].lower() + sentence[1:] if first in {"The", "A", "An", "With", "Around"} else sentence


class _Writer:
    """One forecast being composed (keeps the seeded generator and what has been used)."""

    def __init__(self, request: ForecastRequest) -> None:
        self.request = request
        self.sign = request.sign
        self.sign_name = sign_name(request.sign)
        # Seeded by (date, sign): the same forecast reads the same if written twice.
        self.rng = random.Random(f"{request.day.isoformat()}:{request.sign}")  # noqa: S311 - variety, not secrecy
        self.truth = sky_truth(request.facts, request.sign)
        self.facts = statable_facts(request.facts)
        self.moon_state = moon_phase_state(request.facts)
        self.passages: dict[str, PassageDoc] = {p.key: p for p in request.passages}
        self.used_passages: list[str] = []
        self.used_facts: list[str] = []

    def pick(self, options: Sequence[str]) -> str:
        return self.rng.choice(list(options))

    def acceptable(self, passage: PassageDoc) -> bool:
        """Only passages the checker fully accepts for this window may be woven in."""
        return not check(passage.text, self.request.facts, self.sign, self.truth)

    def passage(self, key: str) -> PassageDoc | None:
        passage = self.passages.get(key)
        if passage and key not in self.used_passages and self.acceptable(passage):
            self.used_passages.append(key)
            return passage
        return None

    def use(self, fact: dict) -> None:
        if fact.get("id") and fact["id"] not in self.used_facts:
            self.used_facts.append(fact["id"])

    # Sentences about one fact, in several wordings. Each states exactly what the fact says.
    def fact_sentence(self, fact: dict) -> str:
        kind, bodies = fact["kind"], fact.get("bodies") or []
        body = bodies[0] if bodies else ""
        house = fact.get("house")
        values = {
            "Body": body_name(body, True) if body else "",
            "body": body_name(body) if body else "",
            "sign": sign_name(fact["sign"]) if fact.get("sign") else "",
            "house": house_phrase(house) if house else "",
            "theme": HOUSE_THEMES.get(house, ""),
            "body_theme": BODY_THEMES.get(body, ""),
        }
        if kind in ("body_in_sign", "moon_sign"):
            if body == "moon":
                options = (
                    "{Body} stays in {sign} for the whole day, in {house} of {theme}.",
                    "{Body} spends the whole day in {sign}, which colours {house}: {theme}.",
                )
            elif fact.get("retrograde") and body in RETROGRADE_ADVICE:
                values["advice"] = RETROGRADE_ADVICE[body]
                options = (
                    "{Body} is retrograde in {sign}, {house}, so {advice}.",
                    "With {body} retrograde in {sign}, {house} of {theme} asks for a second look.",
                )
            else:
                options = (
                    "{Body} is in {sign}, {house}, keeping {theme} in view.",
                    "With {body} in {sign}, {house} of {theme} gets steady attention.",
                    "{Body} is in {sign}, bringing {body_theme} into {house}: {theme}.",
                )
        elif kind == "retrograde":
            values["advice"] = RETROGRADE_ADVICE.get(body, "review before you push ahead")
            options = (
                "{Body} is retrograde in {sign}, {house}, so {advice}.",
                "{Body} is retrograde, in {sign}; {advice}.",
            )
        elif kind == "station":
            values["direction"] = fact.get("direction") or ""
            options = (
                "{Body} stations {direction} around this date, in {sign} and {house}.",
                "Around this date {body} stations {direction}, a pause that puts {body_theme} in focus.",
            )
        elif kind == "ingress":
            verb = "moves back into" if fact.get("retrograde") else self.pick(("enters", "moves into"))
            values["verb"] = verb
            options = (
                "{Body} {verb} {sign} around this date, opening a new chapter for {house}: {theme}.",
                "Around this date {body} {verb} {sign}, shifting {body_theme} toward {house}.",
            )
        elif kind == "lunation":
            values["phase"] = PHASE_LABELS.get(fact.get("phase"), "lunation")
            options = (
                "The {phase} in {sign} falls around this date, lighting up {house}: {theme}.",
                "A {phase} in {sign} around this date marks a turning point for {house}.",
            )
        elif kind == "eclipse":
            detail = fact.get("eclipse_type") or ""
            values["eclipse"] = f"{detail} {fact.get('eclipse')} eclipse".strip()
            options = (
                "A {eclipse} in {sign} falls around this date, stirring {house}: {theme}.",
                "Around this date a {eclipse} in {sign} shakes up {house}.",
            )
        elif kind == "aspect":
            a, b = bodies
            values.update(
                A=body_name(a, True),
                a=body_name(a),
                B=body_name(b),
                aspect=fact["aspect"],
                verb=ASPECT_WORD[fact["aspect"]],
                with_verb=ASPECT_WITH[fact["aspect"]],
                aspect_theme=ASPECT_THEMES[fact["aspect"]],
            )
            # Houses only when both bodies keep theirs for the whole window (a body changing
            # sign mid-window has no single house to name).
            whole = self.truth.whole_house
            houses = [whole.get(a), whole.get(b)]
            if None in houses:
                where = ""
            elif houses[0] == houses[1]:
                where = f" in {house_phrase(houses[0])}"
            else:
                where = f" between {house_phrase(houses[0])} and {house_phrase(houses[1])}"
            values["where"] = where
            if fact.get("timing") == "event":
                options = (
                    "{A} and {B} form an exact {aspect} around this date: {aspect_theme}.",
                    "Around this date {a} and {B} form an exact {aspect}: {aspect_theme}.",
                )
            else:
                options = (
                    "{A} {verb} {B}, and {aspect_theme}{where}.",
                    "With {a} {with_verb} {B}, {aspect_theme}{where}.",
                )
        else:
            return ""
        self.use(fact)
        return self.pick(options).format(**values)

    def lead_facts(self) -> list[dict]:
        """The facts worth leading with: events and aspects first, slow background states last."""
        seen_bodies: set[str] = set()
        leads = []
        for fact in self.facts:
            if fact["kind"] == "moon_phase":
                continue
            if fact["kind"] == "body_in_sign" and fact["bodies"][0] in ("uranus", "neptune", "pluto", "north_node"):
                continue
            key = tuple(fact["bodies"])
            if fact["kind"] in ("body_in_sign", "retrograde") and key[0] in seen_bodies:
                continue
            seen_bodies.update(key if fact["kind"] != "aspect" else ())
            leads.append(fact)
        return leads

    def passage_for(self, fact: dict) -> PassageDoc | None:
        kind, bodies = fact["kind"], fact.get("bodies") or []
        keys: list[str] = []
        if kind in ("body_in_sign", "moon_sign"):
            keys = [f"body-sign-{bodies[0]}-{fact['sign']}", f"body-house-{bodies[0]}-{fact.get('house')}"]
            if fact.get("retrograde"):
                keys.insert(0, f"retrograde-{bodies[0]}")
        elif kind == "retrograde":
            keys = [f"retrograde-{bodies[0]}"]
        elif kind == "station":
            keys = [f"station-{bodies[0]}"]
        elif kind == "lunation":
            phase = (fact.get("phase") or "").replace("_", "-")
            keys = [f"lunation-{phase}-in-{fact.get('sign')}", f"lunation-{phase}"]
        elif kind == "eclipse":
            element = SIGNS_BY_SLUG[fact["sign"]].element if fact.get("sign") else ""
            keys = [f"eclipse-{fact.get('eclipse')}-{element}", f"eclipse-{fact.get('eclipse')}"]
        elif kind == "aspect":
            a, b = bodies
            family = {"sextile": "trine", "opposition": "square"}.get(fact["aspect"], fact["aspect"])
            keys = [f"aspect-{a}-{family}-{b}", f"aspect-{b}-{family}-{a}"]
        for key in keys:
            found = self.passage(key)
            if found:
                return found
        return None

    def headline(self, lead: dict | None) -> str:
        if lead is None:
            return self.pick((f"{self.sign_name}: a steady sky", f"{self.sign_name}, a day to find your own rhythm"))
        kind, bodies = lead["kind"], lead.get("bodies") or []
        sign = sign_name(lead["sign"]) if lead.get("sign") else ""
        body = body_name(bodies[0], True) if bodies else ""
        theme = BODY_THEMES.get(bodies[0], "") if bodies else ""
        # The house makes the same sky read differently for each sign.
        area = HOUSE_AREAS.get(lead.get("house"), "")
        if kind == "station":
            direction = lead.get("direction")
            options = (f"{body} stations {direction}: a pause for your {area}", f"{body} stations {direction}: {theme}")
        elif kind == "ingress":
            options = (
                f"{body} enters {sign}, stirring your {area}",
                f"A new chapter for your {area} as {body} enters {sign}",
            )
        elif kind == "lunation":
            label = PHASE_LABELS.get(lead.get("phase"), "lunation")
            options = (f"{_cap(label)} in {sign} lights up your {area}", f"The {label} in {sign} and your {area}")
        elif kind == "eclipse":
            options = (f"A {lead.get('eclipse')} eclipse in {sign} shakes up your {area}",)
        elif kind == "aspect":
            a, b = body_name(bodies[0], True), body_name(bodies[1])
            if lead.get("timing") == "event":
                options = (f"{a} and {b} form an exact {lead['aspect']}: {ASPECT_THEMES[lead['aspect']]}",)
            else:
                verb = ASPECT_WORD[lead["aspect"]]
                focus = BODY_THEMES.get(bodies[1], "")
                options = (f"{a} {verb} {b}: {ASPECT_THEMES[lead['aspect']]}", f"{a} {verb} {b} and your {focus}")
        elif kind == "retrograde" or lead.get("retrograde"):
            options = (f"{body} retrograde: a second look at your {area}", f"{body} is retrograde in {sign}")
        else:
            options = (f"{body} in {sign} and your {area}", f"{body} in {sign}: {theme} for your {area}")
        return _cap(self.pick(options))

    def overview(self, leads: list[dict]) -> str:
        info = SIGNS_BY_SLUG[self.sign]
        paragraphs = []
        opening = self.pick(OPENINGS).format(sign=self.sign_name, element=info.element)
        if leads:
            first = leads[0]
            text = f"{opening} {self.fact_sentence(first)}"
            passage = self.passage_for(first)
            if passage:
                text += f" {passage.text}"
            paragraphs.append(text)
        else:
            paragraphs.append(opening)
        if len(leads) > 1:
            second = leads[1]
            text = self.pick(TRANSITIONS) + _continuing(self.fact_sentence(second))
            passage = self.passage_for(second)
            if passage:
                text += " " + _first_sentences(passage.text, 2)
            paragraphs.append(text)
        closing = []
        if self.moon_state == "waxing":
            closing.append(
                self.pick(
                    (
                        "The Moon is waxing, which favours starting and building.",
                        "With the Moon waxing, effort you add now tends to grow.",
                    )
                )
            )
        elif self.moon_state == "waning":
            closing.append(
                self.pick(
                    (
                        "The Moon is waning, a natural time to finish, clear and release.",
                        "With the Moon waning, let go of what you no longer need.",
                    )
                )
            )
        profile = self.passage(f"sign-profile-{self.sign}")
        if profile:
            lead_in = self.pick(PROFILE_LEADS).format(sign=self.sign_name, a_sign=with_article(self.sign_name))
            closing.append(lead_in + _first_sentences(profile.text, 2))
        closing.append(self.pick(CLOSINGS))
        paragraphs.append(" ".join(closing))
        return "\n\n".join(paragraphs)

    def section(self, topic: str, leads: list[dict]) -> str:
        houses, bodies = TOPIC_HOUSES[topic], TOPIC_BODIES[topic]

        def score(fact: dict) -> float:
            fact_houses = fact.get("houses") or ([fact["house"]] if fact.get("house") else [])
            house_score = max((len(houses) - houses.index(h) for h in fact_houses if h in houses), default=0)
            body_score = max((len(bodies) - bodies.index(b) for b in fact["bodies"] if b in bodies), default=0)
            if not house_score and not body_score:
                return 0.0
            reuse = 0.5 if fact.get("id") in self.used_facts else 1.0
            return (house_score * 10 + body_score * 6 + fact["rank"] / 50.0) * reuse + self.rng.random()

        candidates = [f for f in self.facts if f["kind"] not in ("moon_phase", "moon_sign") and f.get("bodies")]
        candidates = [f for f in candidates if f["bodies"][0] != "north_node"]
        scored = sorted(((score(f), f) for f in candidates), key=lambda pair: -pair[0])
        lead_in = self.pick(SECTION_LEADS[topic])
        tip = self.pick(TIPS[topic])
        if not scored or scored[0][0] <= 0:
            return f"{QUIET_SECTION[topic]} {tip}"
        fact = scored[0][1]
        text = lead_in + _continuing(self.fact_sentence(fact))
        passage = self._topic_passage(topic, fact)
        if passage:
            text += " " + _first_sentences(passage.text, 3)
        return f"{text} {tip}"

    def _topic_passage(self, topic: str, fact: dict) -> PassageDoc | None:
        bodies = fact.get("bodies") or []
        houses = fact.get("houses") or ([fact["house"]] if fact.get("house") else [])
        # First the passage about this body in this house, then any unused passage on the topic.
        for body, house in zip(bodies, houses, strict=False):
            found = self.passage(f"body-house-{body}-{house}")
            if found:
                return found
        whole_house = self.truth.whole_house
        for key, passage in self.passages.items():
            if (
                passage.kind == "body_in_house"
                and topic in passage.topics
                and whole_house.get(passage.body) == passage.house
                and key not in self.used_passages
                and self.acceptable(passage)
            ):
                return self.passage(key)
        return None

    def write(self) -> Draft:
        leads = self.lead_facts()
        headline = self.headline(leads[0] if leads else None)
        overview = self.overview(leads[:2])
        sections = {topic: self.section(topic, leads) for topic in TOPICS}
        return Draft(
            headline=headline,
            overview=overview,
            sections=sections,
            facts_used=list(self.used_facts),
            passages_used=list(self.used_passages),
            model_name="offline-composer",
        )


class OfflineComposer:
    """Writes forecasts without a model (see the module docstring)."""

    name = "offline"

    def __init__(self) -> None:
        self.stripped = 0  # sentences dropped by the final check (should stay 0)

    def generate(self, request: ForecastRequest, feedback: Sequence[str] = ()) -> Draft:
        draft = _Writer(request).write()
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

        headline = draft.headline if not check(draft.headline, request.facts, request.sign, truth) else ""
        if not headline:
            self.stripped += 1
            headline = f"{sign_name(request.sign)}: your sky around this date"
        draft.headline = headline
        draft.overview = clean(draft.overview)
        draft.sections = {topic: clean(text) for topic, text in draft.sections.items()}
        return draft
