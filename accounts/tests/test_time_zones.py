"""Time zones found by city, labelled with the offset the clocks show at that moment."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.scheduling import known_time_zones
from accounts.time_zones import MAX_TYPED_LENGTH, offset_text, zone_choices, zone_from_text, zone_label

WINTER = datetime(2026, 1, 15, 12, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 12, tzinfo=UTC)


def test_the_list_is_one_city_per_zone_not_every_alias():
    names = [choice.name for choice in zone_choices()]
    assert 380 < len(names) < 480 and len(set(names)) == len(names)
    assert set(names) <= known_time_zones()
    assert "US/Eastern" not in names and "America/New_York" in names and names[0] == "UTC"
    cities = [choice.city for choice in zone_choices()]
    assert len(set(cities)) == len(cities)  # every label names one zone


@pytest.mark.parametrize(
    ("name", "when", "label"),
    [
        ("America/New_York", WINTER, "New York (UTC-5)"),
        ("America/New_York", SUMMER, "New York (UTC-4)"),
        ("Asia/Kolkata", SUMMER, "Kolkata (UTC+5:30)"),
        ("Asia/Kathmandu", WINTER, "Kathmandu (UTC+5:45)"),
        ("Europe/London", WINTER, "London (UTC+0)"),
        ("America/Argentina/Buenos_Aires", WINTER, "Buenos Aires (UTC-3)"),
        ("US/Eastern", WINTER, "US/Eastern (UTC-5)"),  # an alias an old account may hold
        ("UTC", WINTER, "UTC"),
    ],
)
def test_a_label_is_the_city_and_its_offset_at_that_moment(name, when, label):
    assert zone_label(name, when) == label


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("New York (UTC-5)", "America/New_York"),
        ("New York (UTC-4)", "America/New_York"),  # a label from before the clocks changed
        ("  new   york ", "America/New_York"),
        ("America/New_York", "America/New_York"),
        ("america/new york", "America/New_York"),
        ("Paris, France", "Europe/Paris"),
        ("Japan", "Asia/Tokyo"),  # a country with one zone
        ("Sao Paulo", "America/Sao_Paulo"),
        ("US/Eastern", "America/New_York"),  # an alias is stored as the zone the list shows
        ("Asia/Calcutta", "Asia/Kolkata"),  # as Chromium names it
        ("utc", "UTC"),
    ],
)
def test_a_zone_is_found_by_city_label_name_or_country(typed, name):
    assert zone_from_text(typed) == name


@pytest.mark.parametrize(
    "typed",
    ["", "Atlantis", "United States", "Mars/Olympus_Mons", "New York" + " " * MAX_TYPED_LENGTH + "x", "<script>"],
)
def test_unknown_or_ambiguous_text_finds_no_zone(typed):
    # "United States" has many zones: the reader must name a city.
    assert zone_from_text(typed) is None


def test_offsets_are_written_in_hours_and_minutes():
    assert [offset_text(timedelta(minutes=m)) for m in (0, -300, 330, -570, 765)] == [
        "UTC+0",
        "UTC-5",
        "UTC+5:30",
        "UTC-9:30",
        "UTC+12:45",
    ]
