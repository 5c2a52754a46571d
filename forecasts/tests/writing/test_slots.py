"""Time slots: a reading shared by every zone tells each reader when, in their own zone."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from forecasts.writing.slots import fill_slots, slot, slots_in, strip_slots

DAY = date(2026, 12, 5)
EVENT = datetime(2026, 12, 5, 14, 10, tzinfo=UTC)


def test_a_slot_is_its_word_and_the_instant_to_the_minute_in_utc():
    moment = datetime(2026, 12, 5, 15, 10, 42, tzinfo=ZoneInfo("Europe/Paris"))
    assert slot("at", moment) == "[[at:2026-12-05T14:10Z]]"
    assert slot("until", "2026-12-05T14:10:59+00:00") == "[[until:2026-12-05T14:10Z]]"
    with pytest.raises(ValueError):
        slot("around", EVENT)


@pytest.mark.parametrize(
    "zone, expected",
    [
        ("Europe/London", "Venus arrives at 14:10 this afternoon."),
        ("Europe/Berlin", "Venus arrives at 15:10 this afternoon."),
        ("America/New_York", "Venus arrives at 09:10 this morning."),
        ("Asia/Tokyo", "Venus arrives at 23:10 tonight."),
        ("Pacific/Auckland", "Venus arrives at 03:10 in the small hours of tomorrow."),
        ("Australia/Sydney", "Venus arrives at 01:10 in the small hours of tomorrow."),
        ("Asia/Kolkata", "Venus arrives at 19:40 this evening."),
        ("Pacific/Honolulu", "Venus arrives at 04:10 in the small hours."),
        ("Pacific/Kiritimati", "Venus arrives at 04:10 in the small hours of tomorrow."),
        ("Pacific/Fiji", "Venus arrives at 02:10 in the small hours of tomorrow."),
        ("Asia/Seoul", "Venus arrives at 23:10 tonight."),
        ("Pacific/Chatham", "Venus arrives at 03:55 in the small hours of tomorrow."),
    ],
)
def test_each_reader_reads_the_event_in_their_own_zone_and_day(zone, expected):
    text = f"Venus arrives {slot('at', EVENT)}."
    assert fill_slots(text, ZoneInfo(zone), DAY) == expected


def test_without_a_readers_zone_the_time_is_named_in_utc():
    assert fill_slots(f"Venus arrives {slot('at', EVENT)}.", ZoneInfo("UTC"), DAY) == "Venus arrives at 14:10 UTC."


def test_an_event_the_evening_before_the_readers_date_says_so():
    earlier = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)
    assert fill_slots(slot("from", earlier), ZoneInfo("Europe/London"), DAY) == "from 22:30 last night"
    assert fill_slots(slot("from", earlier), ZoneInfo("Asia/Kolkata"), DAY) == "from 04:00 in the small hours"


def test_text_without_slots_is_unchanged_and_slots_are_found_in_order():
    assert fill_slots("Plain words.", ZoneInfo("UTC"), DAY) == "Plain words."
    text = f"Calm {slot('from', EVENT)} {slot('until', datetime(2026, 12, 5, 20, 0, tzinfo=UTC))}."
    assert [found.word for found in slots_in(text)] == ["from", "until"]
    assert strip_slots(text) == "Calm from 14:10 UTC until 20:00 UTC."
