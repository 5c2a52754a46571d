"""Prompt templates for the Daily Forecast, versioned, filled from sky facts and passages.

Pure functions over plain data. Every Forecast records PROMPT_VERSION; change the version
whenever a template's meaning changes, so stored forecasts can be traced to the words that
asked for them.

What the model sees: only the facts a text may state for the whole forecast window (see
forecasts/writing/grounding.py for the rule), each labelled as a state (true for the whole day
everywhere) or an event (near this date, never "today"), with an id it cites back in
`facts_used`; and the retrieved knowledge-base passages to draw on.
"""

from collections.abc import Sequence
from datetime import date

from forecasts.topics import TOPICS
from forecasts.writing.knowledge import PassageDoc
from forecasts.zodiac import SIGNS_BY_SLUG

PROMPT_VERSION = "daily-forecast-v1"

TOPIC_GUIDES = {
    "love": "partners, dating, friendship and family warmth",
    "career": "work, ambitions, colleagues and plans",
    "money": "earning, spending, saving and what you value",
    "health": "energy, body, rest and daily routines",
    "growth": "learning, meaning, inner life and the longer road",
}
# Which solar houses and bodies speak to which topic (used to pick facts for each section).
TOPIC_HOUSES = {
    "love": (5, 7, 11, 8, 4),
    "career": (10, 6, 3, 9),
    "money": (2, 8, 10),
    "health": (6, 1, 12, 4),
    "growth": (9, 12, 3, 11, 1),
}
TOPIC_BODIES = {
    "love": ("venus", "moon", "mars"),
    "career": ("saturn", "mercury", "mars", "sun"),
    "money": ("venus", "jupiter", "saturn"),
    "health": ("mars", "moon", "sun"),
    "growth": ("jupiter", "north_node", "neptune", "sun", "pluto"),
}

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

SYSTEM_PROMPT = """\
You write the Daily Forecast for one sun sign of a horoscope newsletter whose promise is that
nothing it says contradicts the real sky. Readers live in every time zone, and they all read
the same text on the same calendar date.

Rules you must follow:
1. State only the sky facts listed in the input, in your own words. Never mention a planet's
   sign, house, motion, aspect, phase or event unless that exact fact is listed. No other
   bodies or points (no Chiron, Ascendant, void-of-course Moon, degrees or clock times).
2. Facts marked STATE hold for the whole day everywhere: you may say they are so today.
3. Facts marked EVENT happen near this date, but on different calendar days in different
   time zones: say "around this date" or "in these days", never "today", "tonight", "this
   morning", a weekday or a time. Readers' emails add the exact local time.
4. Do not say which sign the Moon is in unless a STATE fact gives it; never say the Moon
   changes sign.
5. Use the knowledge-base passages for meaning and advice, rewritten freshly; do not copy them
   word for word, and do not bring in bodies or signs from them that are not in the facts.
6. Write warmly and concretely, second person, British or American spelling consistently, no
   fatalism, no medical, legal or financial instructions, no exclamation marks.

Return JSON with: headline (under 90 characters), overview (90-160 words), sections with one
short paragraph (40-80 words) for each of love, career, money, health and growth, and
facts_used: the ids of the facts you relied on.
"""

FORECAST_TEMPLATE = """\
Daily Forecast for {sign_name} ({sign_element} sign, ruled by {ruler}) for {day_text}.

Sky facts for {sign_name} readers (id, kind, fact):
{facts_block}

Knowledge-base passages (key: title - text):
{passages_block}

Sections to write:
{topics_block}
{feedback_block}"""

FEEDBACK_TEMPLATE = """
Your previous draft stated things the sky facts do not support. Rewrite it without these:
{violations}
"""


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


def fact_text(fact: dict, houses: dict[str, int] | None = None) -> str:
    """A neutral sentence for one statable fact, without times (times differ by zone).

    `houses` (whole_window_houses) lets an aspect say where both bodies are.
    """
    kind, bodies = fact["kind"], fact.get("bodies") or []
    house = fact.get("house")
    where = f" ({house_phrase(house)})" if house else ""
    if kind in ("body_in_sign", "moon_sign"):
        motion = " retrograde" if fact.get("retrograde") and bodies[0] not in ("north_node", "moon") else ""
        return f"{body_name(bodies[0], True)} is{motion} in {sign_name(fact['sign'])}{where}."
    if kind == "retrograde":
        return f"{body_name(bodies[0], True)} is retrograde, in {sign_name(fact['sign'])}{where}."
    if kind == "ingress":
        verb = "moves back into" if fact.get("retrograde") else "enters"
        return f"{body_name(bodies[0], True)} {verb} {sign_name(fact['sign'])}{where}."
    if kind == "station":
        return f"{body_name(bodies[0], True)} stations {fact.get('direction')} in {sign_name(fact['sign'])}{where}."
    if kind == "lunation":
        label = (fact.get("phase") or "").replace("_", " ").capitalize().replace("moon", "Moon")
        return f"{label} in {sign_name(fact['sign'])}{where}."
    if kind == "eclipse":
        detail = f"{fact.get('eclipse_type')} " if fact.get("eclipse_type") else ""
        return f"A {detail}{fact.get('eclipse')} eclipse in {sign_name(fact['sign'])}{where}.".replace("A a", "An a")
    if kind == "aspect":
        a, b = bodies
        pair = [(houses or {}).get(a), (houses or {}).get(b)]
        if None in pair:
            linking = ""  # a body changes sign in the window: no single house to name
        elif pair[0] == pair[1]:
            linking = f" (both in {house_phrase(pair[0])})"
        else:
            linking = f" (linking {house_phrase(pair[0])} and {house_phrase(pair[1])})"
        exact = " It perfects near this date." if fact.get("timing") == "event" else ""
        return f"{body_name(a, True)} {fact['aspect']} {body_name(b)}{linking}.{exact}"
    return fact.get("summary") or ""


def facts_block(facts: Sequence[dict]) -> str:
    """The statable facts, one per line: id, STATE or EVENT, and a neutral sentence."""
    lines = []
    houses = whole_window_houses(facts)
    for fact in statable_facts(facts):
        if fact["kind"] == "moon_phase":
            # Only a waxing or waning Moon holds for the whole window; a named phase does not.
            if not moon_phase_state(facts):
                continue
            text = f"The Moon is {moon_phase_state(facts)}."
        else:
            text = fact_text(fact, houses)
        label = "STATE" if fact["timing"] == "state" else "EVENT"
        lines.append(f"- {fact.get('id', '?')} [{label}] {text}")
    return "\n".join(lines) or "- (no facts)"


def passages_block(passages: Sequence[PassageDoc]) -> str:
    return "\n".join(f"- {p.key}: {p.title} - {p.text}" for p in passages) or "- (none)"


def topics_block() -> str:
    return "\n".join(f"- {topic}: {TOPIC_GUIDES[topic]}" for topic in TOPICS)


def system_prompt() -> str:
    """The model's instructions (PROMPT_VERSION)."""
    return SYSTEM_PROMPT


def forecast_prompt(
    sign: str,
    day: date,
    facts: Sequence[dict],
    passages: Sequence[PassageDoc],
    feedback: Sequence[str] = (),
) -> str:
    """The Daily Forecast request for one sign and date, with optional grounding feedback."""
    info = SIGNS_BY_SLUG[sign]
    feedback_text = ""
    if feedback:
        feedback_text = FEEDBACK_TEMPLATE.format(violations="\n".join(f"- {item}" for item in feedback))
    return FORECAST_TEMPLATE.format(
        sign_name=info.name,
        sign_element=info.element,
        ruler=body_name(info.ruler),
        day_text=f"{day:%d %B %Y}".lstrip("0"),
        facts_block=facts_block(facts),
        passages_block=passages_block(passages),
        topics_block=topics_block(),
        feedback_block=feedback_text,
    )
