"""Prompt building is pure: the same facts and passages always give the same versioned text."""

from datetime import date

from forecasts.writing.generation import facts_for
from forecasts.writing.knowledge import knowledge_read
from forecasts.writing.prompts import PROMPT_VERSION, facts_block, forecast_prompt, statable_facts, system_prompt


def test_the_prompt_offers_only_statable_facts_labelled_state_or_event():
    day = date(2025, 6, 20)  # the Sun enters Cancer; the Moon enters Taurus inside the window
    facts = facts_for(day, "leo")
    block = facts_block(facts)
    assert "[EVENT] The Sun enters Cancer" in block
    assert "The Moon is in" not in block and "Moon enters" not in block  # the Moon's sign changes
    assert "[STATE] Venus is in Taurus" in block
    assert "UTC" not in block  # times differ by zone; the email adds them
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
    assert 'never "today"' in system_prompt()
    assert PROMPT_VERSION
