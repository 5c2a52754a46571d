"""Prompt building is pure: the same facts and passages always give the same versioned text."""

from datetime import date

from forecasts.writing.facts import statable_facts
from forecasts.writing.generation import facts_for
from forecasts.writing.generators import ReadingMemory
from forecasts.writing.knowledge import knowledge_read
from forecasts.writing.prompts import PROMPT_VERSION, facts_block, forecast_prompt, system_prompt
from forecasts.writing.slots import slot


def test_the_prompt_offers_statable_facts_and_gives_each_event_its_time_slot():
    day = date(2025, 6, 20)  # the Sun enters Cancer; the Moon enters Taurus inside the window
    facts = facts_for(day, "leo")
    block = facts_block(facts)
    sun = next(f for f in facts if f["kind"] == "ingress" and f["bodies"] == ["sun"])
    moon = next(f for f in facts if f["kind"] == "moon_ingress")
    assert f"[EVENT {slot('at', sun['time'])}] The Sun enters Cancer" in block
    # The Moon's sign changes in the window: never a state, only the event with its slot.
    assert "[STATE] The Moon is in" not in block
    assert f"[EVENT {slot('at', moon['time'])}] The Moon enters Taurus" in block
    assert "[STATE] Venus is in Taurus" in block
    assert "UTC" not in block  # times differ by zone: slots carry them to each reader
    kinds = {fact["kind"] for fact in statable_facts(facts)}
    assert "moon_ingress" not in kinds and "moon_sign" not in kinds


def test_the_forecast_prompt_is_deterministic_and_carries_feedback():
    day = date(2025, 3, 14)
    facts = facts_for(day, "virgo")
    passages = [doc for doc in knowledge_read() if doc.key in {"sign-profile-virgo", "eclipse-lunar"}]
    first = forecast_prompt("virgo", day, facts, passages)
    assert first == forecast_prompt("virgo", day, facts, passages)
    assert first.startswith("Daily Forecast for Virgo (earth sign, ruled by Mercury) for 14 March 2025.")
    assert "sign-profile-virgo: Virgo: The Careful Improver" in first
    assert "previous draft" not in first
    again = forecast_prompt("virgo", day, facts, passages, ["'Mercury retrograde': not retrograde"])
    assert "previous draft stated things the sky facts do not support" in again and "'Mercury retrograde'" in again
    assert "copy its slot exactly" in system_prompt() and '"today"' in system_prompt()
    assert PROMPT_VERSION == "daily-reading-v2"


def test_the_prompt_lists_the_signs_recent_headlines_and_openings_to_avoid():
    day = date(2025, 3, 14)
    memory = ReadingMemory(headlines=("A slow start pays off",), openings=("The Moon moves into Leo early.",))
    prompt = forecast_prompt("virgo", day, facts_for(day, "virgo"), [], memory=memory)
    assert "Recent headlines for Virgo (write a new one):\n- A slow start pays off" in prompt
    assert "Recent openings for Virgo (open differently):\n- The Moon moves into Leo early." in prompt
