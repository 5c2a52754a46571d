"""The grounding checker: every sky claim in a text must hold for every reader of that date."""

from datetime import UTC, date, datetime, timedelta

import pytest

from forecasts.writing.facts import body_name, forecast_window
from forecasts.writing.generation import facts_for
from forecasts.writing.grounding import check
from forecasts.writing.sky_truth import sky_truth
from forecasts.writing.slots import slot


def reasons(text: str, day: date, sign: str = "leo") -> list[str]:
    return [str(violation) for violation in check(text, facts_for(day, sign), sign)]


def test_the_forecast_window_is_the_union_of_every_zones_local_date():
    start, end = forecast_window(date(2025, 6, 20))
    assert start == datetime(2025, 6, 19, 10, 0, tzinfo=UTC)  # 00:00 on the 20th at UTC+14
    assert end == datetime(2025, 6, 21, 12, 0, tzinfo=UTC)  # 00:00 on the 21st at UTC-12
    assert (end - start).total_seconds() == 50 * 3600


def test_true_states_of_the_whole_window_pass():
    # 20 June 2025: Venus in Taurus, Mercury in Cancer and direct, Pluto retrograde all window.
    text = (
        "Venus is in Taurus, and Mercury, the messenger, is still in Cancer. Mercury is direct. "
        "Pluto retrograde asks for patience. Jupiter in Cancer sits in your twelfth house. "
        "The waning Moon favours clearing out. Leo, be kind to yourself today."
    )
    assert reasons(text, date(2025, 6, 20)) == []


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("Mercury retrograde tangles your plans.", "Mercury is not retrograde"),
        ("Venus in Aries makes you bold.", "Venus is not in Aries"),
        ("A full moon tonight lights up your sky.", "no full moon"),
        ("Mars trine Jupiter brings luck.", "no such aspect"),
        ("Venus opposite Saturn strains a bond.", "no such aspect"),
        ("Venus and Mars form a conjunction.", "no such aspect"),
        ("Saturn enters Taurus around this date.", "does not enter Taurus"),
        ("Venus stations direct around this date.", "does not station direct"),
        ("Jupiter in your fifth house makes you playful.", "not in your house 5"),
        ("Scorpio energy is everywhere.", "no body is in Scorpio"),
        ("Chiron, the wounded healer, is active.", "not among the facts"),
        ("At 14:30 the mood shifts.", "clock times"),
        ("Venus at 12 degrees brings balance.", "degrees are not stated"),
        ("Venus sextile Saturn (orb 0.2 deg) steadies you.", "degrees are not stated"),
        ("With an orb of 1 the contact is tight.", "degrees are not stated"),
        ("A solar eclipse resets your goals.", "no such eclipse"),
        ("Gemini season makes you chatty.", "the Sun is not in Gemini"),
    ],
)
def test_false_claims_are_caught(text, fragment):
    found = reasons(text, date(2025, 6, 20))
    assert any(fragment in reason for reason in found), found


def test_events_in_the_window_may_be_stated_but_never_dated():
    day = date(2025, 6, 20)  # the Sun enters Cancer on 20 June 2025 at 02:42 UTC
    assert reasons("The Sun enters Cancer around this date.", day) == []
    dated = reasons("The Sun enters Cancer today.", day)
    assert any("different local dates" in reason for reason in dated)
    assert any("different local dates" in reason for reason in reasons("Tonight the Sun enters Cancer.", day))
    # A state true all window may be said of today.
    assert reasons("Venus is in Taurus today.", day) == []


def test_a_planet_changing_sign_in_the_window_has_no_single_sign():
    day = date(2025, 6, 20)
    assert any("not in Gemini for the whole window" in r for r in reasons("The Sun is in Gemini.", day))
    assert any("not in Cancer for the whole window" in r for r in reasons("The Sun is in Cancer.", day))


def test_the_moons_sign_is_stated_only_when_it_holds_for_the_whole_window():
    # 12 April 2025: the Moon stays in Libra for the whole 50-hour window.
    assert reasons("The Moon is in Libra, so seek balance.", date(2025, 4, 12)) == []
    # 20 June 2025: the Moon enters Taurus inside the window.
    day = date(2025, 6, 20)
    assert any("Moon's sign" in r for r in reasons("The Moon is in Taurus.", day))
    assert any("Moon's sign" in r for r in reasons("The Moon is in Aries.", day))
    assert any("stated only with a time slot" in r for r in reasons("Later the Moon moves into Taurus.", day))


def test_stations_lunations_and_eclipses_in_the_window_pass():
    day = date(2025, 3, 14)  # total lunar eclipse (full Moon in Virgo); Mercury stations retrograde
    text = (
        "A total lunar eclipse in Virgo falls around this date. "
        "The full Moon in Virgo asks for order. Mercury stations retrograde around this date."
    )
    assert reasons(text, day) == []
    assert any("no such eclipse" in r for r in reasons("A solar eclipse in Virgo falls around this date.", day))


def test_disjunctions_and_generic_words_need_something_to_stand_on():
    day = date(2025, 6, 20)
    truth = sky_truth(facts_for(day, "leo"), "leo")
    assert truth.aspect_kinds  # there are aspects this day
    missing = {"conjunction", "sextile", "square", "trine", "opposition"} - truth.aspect_kinds
    for name in missing:
        assert reasons(f"A {name} colours the mood.", day)


def _event(day: date, sign: str, kind: str, body: str) -> dict:
    return next(f for f in facts_for(day, sign) if f["kind"] == kind and body in f["bodies"])


def test_an_event_may_carry_the_time_slot_of_its_own_instant():
    day = date(2025, 6, 20)  # the Sun enters Cancer at 02:42 UTC
    ingress = _event(day, "leo", "ingress", "sun")
    text = f"The Sun enters Cancer {slot('at', ingress['time'])}, and your inner life asks for quiet."
    assert reasons(text, day) == []


@pytest.mark.parametrize(
    "sentence, fragment",
    [
        ("The Sun enters Cancer {wrong}.", "no event in this forecast's window happens at that time"),
        ("Venus softens your words {right}.", "is not the one this sentence tells"),
        ("The Sun enters Cancer {right}, so plan a quiet evening today.", "do not date it"),
    ],
)
def test_a_time_slot_must_be_its_events_own_instant(sentence, fragment):
    day = date(2025, 6, 20)
    instant = datetime.fromisoformat(_event(day, "leo", "ingress", "sun")["time"])
    text = sentence.format(right=slot("at", instant), wrong=slot("at", instant + timedelta(hours=3)))
    found = reasons(text, day)
    assert any(fragment in reason for reason in found), found


def test_a_slot_of_an_aspect_is_not_an_ingress_of_one_of_its_bodies():
    day = date(2025, 6, 20)
    facts = facts_for(day, "leo")
    aspect = next(f for f in facts if f["kind"] == "aspect" and f["exact_times"])
    a, b = (body_name(body, True) for body in aspect["bodies"])
    when = slot("at", aspect["exact_times"][0])
    assert reasons(f"{a} and {b} pull together {when}.", day) == []
    found = reasons(f"{a} stirs your plans {when}.", day)
    assert any("is not the one this sentence tells" in reason for reason in found), found


def test_the_moons_change_of_sign_is_stated_only_with_its_slot():
    day = date(2025, 6, 20)
    change = _event(day, "leo", "moon_ingress", "moon")
    sign = change["sign"].title()
    assert reasons(f"The Moon moves into {sign} {slot('after', change['time'])}.", day) == []
    found = reasons(f"The Moon moves into {sign} around this date.", day)
    assert any("stated only with a time slot" in reason for reason in found), found
    later = datetime.fromisoformat(change["time"]) + timedelta(hours=5)
    found = reasons(f"The Moon moves into {sign} {slot('at', later)}.", day)
    assert any("stated only with a time slot" in reason for reason in found), found


@pytest.mark.parametrize(
    "day, text",
    [
        # Mercury stations retrograde on 15 March 2025, inside the window of the 14th: it is not
        # retrograde for every reader of that date, in either word order.
        (date(2025, 3, 14), "Mercury is retrograde, so check your messages."),
        (date(2025, 3, 14), "Retrograde Mercury asks you to check your messages."),
        # Mars stations direct on 24 February 2025.
        (date(2025, 2, 24), "Mars is retrograde in Cancer."),
        (date(2025, 2, 24), "Retrograde Mars slows your plans."),
        # Mars is direct all window on 20 June 2025.
        (date(2025, 6, 20), "Retrograde Mars slows your plans."),
    ],
)
def test_retrograde_claims_on_a_day_the_planet_stations_or_moves_forward_are_caught(day, text):
    found = reasons(text, day)
    assert any("is not retrograde for the whole window" in reason for reason in found), found
