"""Prompt templates for the Daily Forecast, versioned, filled from sky facts and passages.

Pure functions over plain data. Every Forecast records PROMPT_VERSION; change the version
whenever a template's meaning changes, so stored forecasts can be traced to the words that
asked for them.

What the model sees: only the facts a text may state for the whole forecast window (see
forecasts/writing/grounding.py for the rule), each labelled as a state (true for the whole day
everywhere) or an event with its time slot (forecasts/writing/slots.py: the reader's email says
when, in their zone), with an id it cites back in `facts_used`; the retrieved knowledge-base
passages to draw on; and the sign's recent headlines and openings, so it writes new ones.
"""

from collections.abc import Sequence
from datetime import date

from forecasts.topics import TOPICS
from forecasts.writing.facts import (
    body_name,
    house_phrase,
    moon_phase_state,
    sign_name,
    statable_facts,
    whole_window_houses,
)
from forecasts.writing.generators import ReadingMemory
from forecasts.writing.knowledge import PassageDoc
from forecasts.writing.slots import slot
from forecasts.zodiac import SIGNS_BY_SLUG

PROMPT_VERSION = "daily-reading-v2"
RECENT_LISTED = 30  # the sign's last 30 headlines and openings, to avoid

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


SYSTEM_PROMPT = """\
You write today's reading for one sun sign of a horoscope newsletter whose promise is that
nothing it says contradicts the real sky. Readers live in every time zone and all read the
same text on the same calendar date; each reader's email fills in times in their own zone.

What a reading is:
- headline: names the day's story, under 70 characters; never one of the recent headlines listed.
- overview: the main reading, ONE story about the reader's day in 120-220 words, in two or three
  short paragraphs. Lead with what changes daily (the Moon, Mercury, Venus, Mars, stations,
  lunations), say what it means for the day, and give concrete timing with time slots. Slow
  background (outer planets) gets at most one sentence. Do not open like a recent opening listed.
- sections: one note of at most 60 words for each of love, career, money, health and growth, each
  strictly about its own topic.
- do / dont: one short line each, without the words "Do" or "Don't" in front.
- facts_used: the ids of the facts you relied on.

Rules you must follow:
1. State only the sky facts listed, in your own words. Never mention a planet's sign, house,
   motion, aspect, phase or event unless that exact fact is listed. No other bodies or points
   (no Chiron, Ascendant, void-of-course Moon), no degrees, no orbs.
2. Facts marked STATE hold for the whole day everywhere.
3. Facts marked EVENT carry a time slot like [[at:2026-03-09T14:32Z]]. To say when an event
   happens, copy its slot exactly into the sentence that states the event, in place of a time
   phrase (it becomes "at 14:32 this afternoon" for one reader, "at 01:32 tomorrow morning" for
   another); you may change its first word to from, until, after, before or by. Never write a
   clock time, "today", "tonight", "this morning", "tomorrow" or a weekday about an event
   yourself. Use a slot only with the event it belongs to.
4. The Moon's sign may be named only from a STATE fact, or with the slot of its change of sign.
5. Plain English: no aspect names (conjunction, square, trine...), no house numbers; say what a
   contact feels like and name the life area in words ("your partnerships", "home and family").
6. Use the knowledge-base passages for meaning, rewritten freshly; bring in no bodies or signs
   from them that are not in the facts.
7. Warm and concrete, second person, no fatalism, no medical, legal or financial instructions,
   no exclamation marks.
"""

FORECAST_TEMPLATE = """\
Daily Forecast for {sign_name} ({sign_element} sign, ruled by {ruler}) for {day_text}.

Sky facts for {sign_name} readers (id, kind, fact):
{facts_block}

Knowledge-base passages (key: title - text):
{passages_block}

Topic notes to write:
{topics_block}

Recent headlines for {sign_name} (write a new one):
{headlines_block}

Recent openings for {sign_name} (open differently):
{openings_block}
{feedback_block}"""

FEEDBACK_TEMPLATE = """
Your previous draft stated things the sky facts do not support. Rewrite it without these:
{violations}
"""


def fact_text(fact: dict, houses: dict[str, int] | None = None) -> str:
    """A neutral sentence for one statable fact, without times (times differ by zone).

    `houses` (whole_window_houses) lets an aspect say where both bodies are.
    """
    kind, bodies = fact["kind"], fact.get("bodies") or []
    house = fact.get("house")
    where = f" ({house_phrase(house)}: {', '.join(fact.get('topics') or [])})" if house else ""
    if kind in ("body_in_sign", "moon_sign"):
        motion = " retrograde" if fact.get("retrograde") and bodies[0] not in ("north_node", "moon") else ""
        return f"{body_name(bodies[0], True)} is{motion} in {sign_name(fact['sign'])}{where}."
    if kind == "retrograde":
        return f"{body_name(bodies[0], True)} is retrograde, in {sign_name(fact['sign'])}{where}."
    if kind == "moon_ingress":
        return f"The Moon enters {sign_name(fact['sign'])}{where}."
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
        exact = " It is exact at the slot's time." if fact.get("timing") == "event" else ""
        return f"{body_name(a, True)} {fact['aspect']} {body_name(b)}{linking}.{exact}"
    return fact.get("summary") or ""


def facts_block(facts: Sequence[dict]) -> str:
    """The statable facts, one per line: id, STATE or EVENT, and a neutral sentence."""
    lines = []
    houses = whole_window_houses(facts)
    moon_changes = [{**f, "timing": "event"} for f in facts if f.get("kind") == "moon_ingress" and f.get("time")]
    for fact in [*statable_facts(facts), *moon_changes]:
        if fact["kind"] == "moon_phase":
            # Only a waxing or waning Moon holds for the whole window; a named phase does not.
            if not moon_phase_state(facts):
                continue
            text = f"The Moon is {moon_phase_state(facts)}."
        else:
            text = fact_text(fact, houses)
        label = "STATE"
        if fact["timing"] == "event":
            instant = fact.get("time") or (fact.get("exact_times") or [None])[0]
            label = f"EVENT {slot('at', instant)}" if instant else "EVENT"
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
    memory: ReadingMemory | None = None,
) -> str:
    """The reading request for one sign and date: its facts (events with their time slots), the
    passages, the sign's recent headlines and openings to avoid, and any grounding feedback."""
    memory = memory or ReadingMemory()
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
        headlines_block="\n".join(f"- {h}" for h in memory.headlines[:RECENT_LISTED]) or "- (none)",
        openings_block="\n".join(f"- {o}" for o in memory.openings[:RECENT_LISTED]) or "- (none)",
        feedback_block=feedback_text,
    )
