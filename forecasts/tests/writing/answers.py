"""Model answers in the shape of the Responses API's structured output."""

import re

from forecasts.topics import TOPICS


def state_facts(request_body: dict) -> list[tuple[str, str]]:
    """(id, sentence) of the STATE facts listed in a Daily Forecast prompt."""
    found = re.findall(r"^- (f\d+) \[STATE\] (.+)$", request_body.get("input", ""), flags=re.MULTILINE)
    # Drop the house in parentheses: the model says it in its own words.
    return [(fact_id, re.sub(r"\s*\([^)]*\)", "", sentence)) for fact_id, sentence in found]


def grounded_answer(request_body: dict) -> dict:
    """What a well-behaved model writes: only the facts it was given, in plain words."""
    facts = state_facts(request_body)
    fact_id, sentence = facts[0] if facts else ("", "The sky is steady.")
    return {
        "headline": "A steady sky for you",
        "overview": (
            f"{sentence} Take the day one step at a time, notice what feels easy and what needs care, "
            "and give the people around you the patience you would like from them."
        ),
        "sections": {topic: f"For {topic}, keep things simple and honest." for topic in TOPICS},
        "do": "Keep one promise you made to yourself.",
        "dont": "Rush a reply you would rather sleep on.",
        "facts_used": [fact_id] if fact_id else [],
    }


FALSE_ANSWER = {
    "headline": "Mercury retrograde shakes things up",
    "overview": "Mercury retrograde tangles your plans. Venus in Aries makes you bold, and a full moon tonight "
    "lights up your sky.",
    "sections": {topic: "Trust yourself." for topic in TOPICS},
    "do": "Trust yourself.",
    "dont": "Doubt the full moon tonight.",
    "facts_used": ["f01"],
}


EMPTY_ANSWER = {
    "headline": "",
    "overview": "",
    "sections": {topic: "" for topic in TOPICS},
    "do": "",
    "dont": "",
    "facts_used": [],
}
