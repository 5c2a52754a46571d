"""The reading a person opens each morning: one true story, never the same twice.

The aims of issue 14 (forecasts/writing/reading_report.py AIMS) are asserted here on 30 days
(test_offline_year.py: on every 30 days of a year), so a regression in the composer or the
phrasebook fails `make test`; `make bench` and `manage.py reading_report` report the figures.
"""

from datetime import date, timedelta

import pytest

from forecasts.topics import TOPICS
from forecasts.writing.generation import facts_for
from forecasts.writing.generators import ForecastRequest, ReadingMemory
from forecasts.writing.generators.offline import OfflineComposer
from forecasts.writing.reading_report import aims_missed, reading_metrics, readings_compose
from forecasts.writing.sky_claims import sentences
from forecasts.writing.slots import slots_in, strip_slots
from forecasts.zodiac import SIGN_SLUGS

START = date(2026, 12, 1)


@pytest.fixture(scope="module")
def month():
    composer = OfflineComposer()
    readings, seconds = readings_compose(START, 30, facts_for, composer=composer)
    return readings, reading_metrics(readings, seconds, composer.stripped)


def test_thirty_days_of_twelve_signs_meet_every_aim(month):
    _, metrics = month
    assert aims_missed(metrics, timed=False) == [], metrics
    assert metrics["readings"] == 360


def test_a_reading_has_a_headline_one_story_short_topic_notes_and_a_do_and_dont(month):
    readings, _ = month
    for reading in readings:
        draft = reading.draft
        assert draft.headline and "\n" not in draft.headline and len(draft.headline) <= 90
        assert 90 <= reading.words() <= 240, (reading.sign, reading.day, draft.overview)
        assert set(draft.sections) == set(TOPICS)
        for topic, note in draft.sections.items():
            assert 5 <= len(strip_slots(note).split()) <= 60, (topic, note)
        assert draft.advice["do"] and draft.advice["dont"]


def test_the_story_gives_local_timing_through_slots_and_no_jargon(month):
    readings, _ = month
    with_slots = [r for r in readings if slots_in(r.draft.overview)]
    # Most days something happens at a moment worth naming (the Moon changes sign every ~2.5 days).
    assert len(with_slots) >= len(readings) * 0.8
    for reading in readings:
        text = strip_slots(reading.draft.overview + " " + " ".join(reading.draft.sections.values())).lower()
        for jargon in ("trine", "sextile", "square", "conjunct", "opposition", " orb", "house", "°"):
            assert jargon not in text, (jargon, reading.sign, reading.day)


def test_what_changes_daily_leads_and_slow_background_gets_at_most_a_sentence(month):
    readings, _ = month
    outer = ("Jupiter", "Saturn", "Uranus", "Neptune", "Pluto")
    fast = ("Moon", "Mercury", "Venus", "Mars", "Sun")
    for reading in readings:
        story = sentences(reading.draft.overview)
        # A slow planet opens only with an event of the day (a station, an exact contact: a slot).
        assert not story[0].startswith(outer) or slots_in(story[0]), story[0]
        # Its long background states (no moment of their own) get one sentence at most.
        background = [s for s in story if any(n in s for n in outer) and not any(n in s for n in fast)]
        assert len([s for s in background if not slots_in(s)]) <= 1, background


def test_the_same_reading_is_written_again_for_the_same_sign_date_and_memory():
    day = START
    facts = facts_for(day, "virgo")
    first = OfflineComposer().generate(ForecastRequest(day, "virgo", facts, []))
    again = OfflineComposer().generate(ForecastRequest(day, "virgo", facts, []))
    assert (first.headline, first.overview, first.sections) == (again.headline, again.overview, again.sections)


def test_memory_prevents_a_phrasing_the_sign_has_read_lately():
    day = START + timedelta(days=3)
    facts = facts_for(day, "leo")
    first = OfflineComposer().generate(ForecastRequest(day, "leo", facts, []))
    remembered = ReadingMemory(recent=dict.fromkeys(first.phrasings, 1), headlines=(first.headline,))
    second = OfflineComposer().generate(ForecastRequest(day, "leo", facts, [], remembered))
    # Every interpretation is new; fact sentences may keep their shape only when no fresh one is left.
    story_first, story_second = set(sentences(first.overview)), set(sentences(second.overview))
    assert len(story_first & story_second) <= 1
    assert second.headline != first.headline
    assert set(first.sections.values()).isdisjoint(second.sections.values())


def test_twelve_signs_of_one_day_read_differently(month):
    readings, _ = month
    day = [r for r in readings if r.day == START]
    assert {r.sign for r in day} == set(SIGN_SLUGS)
    assert len({r.draft.headline for r in day}) == 12
    assert len({sentences(r.draft.overview)[0] for r in day}) == 12
