"""Event search: published times (USNO, NASA, ephemeris publishers) and the shape of what is found."""

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasts.sky import BODY_SLUGS, EVENT_TYPES, STATION_BODY_SLUGS, events_between
from forecasts.sky.ephemeris import positions_at

REFERENCE = json.loads((Path(__file__).parent / "data" / "sky_reference.json").read_text())
TOLERANCE = timedelta(minutes=REFERENCE["tolerances"]["event_minutes"])
YEAR_2025 = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
SEASON_SIGNS = {"march_equinox": "aries", "june_solstice": "cancer", "september_equinox": "libra"}


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def year_of(year: int) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def events_2025():
    return events_between(*YEAR_2025)


@pytest.fixture(scope="module")
def sun_ingresses_2017_2026():
    found = []
    for year in range(2017, 2027):
        found += events_between(*year_of(year), bodies=["sun"], types=["ingress"])
    return found


@pytest.fixture(scope="module")
def lunations_2020_and_2030():
    types = ["new_moon", "first_quarter", "full_moon", "last_quarter"]
    return events_between(*year_of(2020), bodies=["moon"], types=types) + events_between(
        *year_of(2030), bodies=["moon"], types=types
    )


@pytest.fixture(scope="module")
def eclipses_2017_2026():
    start, end = datetime(2017, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    return events_between(start, end, types=["solar_eclipse", "lunar_eclipse"])


def closest(events, when: datetime):
    return min(events, key=lambda event: abs(event.time - when))


@pytest.mark.parametrize("item", REFERENCE["seasons"], ids=lambda item: item["time"])
def test_equinoxes_and_solstices_match_usno_to_two_minutes(item, sun_ingresses_2017_2026):
    expected = parse_utc(item["time"])
    found = closest(sun_ingresses_2017_2026, expected)
    assert found.sign == item["sun_sign"]
    assert abs(found.time - expected) <= TOLERANCE


@pytest.mark.parametrize("item", REFERENCE["moon_phases"], ids=lambda item: f"{item['type']}-{item['time']}")
def test_lunar_phases_match_usno_to_two_minutes(item, lunations_2020_and_2030):
    expected = parse_utc(item["time"])
    found = closest(lunations_2020_and_2030, expected)
    assert found.type == item["type"]
    assert abs(found.time - expected) <= TOLERANCE


def test_every_usno_phase_is_found_and_nothing_else(lunations_2020_and_2030):
    assert len(lunations_2020_and_2030) == len(REFERENCE["moon_phases"])


@pytest.mark.parametrize("item", REFERENCE["solar_eclipses"], ids=lambda item: item["time"])
def test_solar_eclipses_match_nasa_greatest_eclipse_and_kind(item, eclipses_2017_2026):
    expected = parse_utc(item["time"])
    found = closest([event for event in eclipses_2017_2026 if event.type == "solar_eclipse"], expected)
    assert abs(found.time - expected) <= TOLERANCE
    assert found.detail == item["kind"]
    assert found.body == "sun"


@pytest.mark.parametrize("item", REFERENCE["lunar_eclipses"], ids=lambda item: item["time"])
def test_lunar_eclipses_match_nasa_greatest_eclipse_and_kind(item, eclipses_2017_2026):
    expected = parse_utc(item["time"])
    found = closest([event for event in eclipses_2017_2026 if event.type == "lunar_eclipse"], expected)
    assert abs(found.time - expected) <= TOLERANCE
    assert found.detail == item["kind"]
    assert found.body == "moon"


def test_no_eclipse_is_found_that_nasa_does_not_list(eclipses_2017_2026):
    solar = [event for event in eclipses_2017_2026 if event.type == "solar_eclipse"]
    lunar = [event for event in eclipses_2017_2026 if event.type == "lunar_eclipse"]
    assert len(solar) == len(REFERENCE["solar_eclipses"])
    assert len(lunar) == len(REFERENCE["lunar_eclipses"])


@pytest.mark.parametrize("item", REFERENCE["stations"], ids=lambda item: f"{item['type']}-{item['time']}")
def test_mercury_stations_match_published_times(item):
    expected = parse_utc(item["time"])
    found = events_between(expected - timedelta(days=3), expected + timedelta(days=3), bodies=[item["body"]])
    stations = [event for event in found if event.type == item["type"]]
    assert len(stations) == 1
    assert abs(stations[0].time - expected) <= TOLERANCE


def test_a_year_holds_the_expected_numbers_of_events(events_2025):
    counts = defaultdict(int)
    for event in events_2025:
        counts[event.type] += 1
    assert counts["new_moon"] == 12
    assert counts["full_moon"] == 12
    assert counts["solar_eclipse"] == 2
    assert counts["lunar_eclipse"] == 2
    # The Moon changes sign ~13.4 times a month; the Sun 12 times a year.
    assert 160 <= sum(1 for e in events_2025 if e.type == "ingress" and e.body == "moon") <= 165
    assert sum(1 for e in events_2025 if e.type == "ingress" and e.body == "sun") == 12
    assert {event.type for event in events_2025} == set(EVENT_TYPES)


def test_events_are_in_time_order_inside_the_range(events_2025):
    start, end = YEAR_2025
    times = [event.time for event in events_2025]
    assert times == sorted(times)
    assert all(start <= when < end for when in times)
    assert all(event.body in BODY_SLUGS for event in events_2025)


def test_every_ingress_is_followed_by_positions_in_the_new_sign(events_2025):
    for event in (e for e in events_2025 if e.type == "ingress"):
        after = positions_at(event.time + timedelta(minutes=1))[event.body]
        before = positions_at(event.time - timedelta(minutes=1))[event.body]
        assert after.sign == event.sign, event
        assert before.sign == event.from_sign, event


@settings(max_examples=15, deadline=None, database=None)
@given(st.data())
def test_ingress_times_are_sharp_to_a_second(events_2025, data):
    ingresses = [event for event in events_2025 if event.type == "ingress"]
    event = data.draw(st.sampled_from(ingresses))
    assert positions_at(event.time + timedelta(seconds=1))[event.body].sign == event.sign
    assert positions_at(event.time - timedelta(seconds=1))[event.body].sign == event.from_sign


def test_stations_alternate_retrograde_and_direct_for_each_body():
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    stations = events_between(start, end, types=["station_retrograde", "station_direct"])
    by_body = defaultdict(list)
    for event in stations:
        by_body[event.body].append(event)
    assert set(by_body) == set(STATION_BODY_SLUGS)
    for body, events in by_body.items():
        kinds = [event.type for event in events]
        assert all(a != b for a, b in pairwise(kinds)), body
        # Motion really reverses: retrograde just after a retrograde station, direct after a direct one.
        for event in events:
            after = positions_at(event.time + timedelta(hours=12))[body]
            assert after.retrograde == (event.type == "station_retrograde"), event


def test_mercury_goes_retrograde_three_or_four_times_a_year():
    for year in (2021, 2024):
        stations = events_between(*year_of(year), bodies=["mercury"], types=["station_retrograde"])
        assert 3 <= len(stations) <= 4


@settings(max_examples=12, deadline=None, database=None)
@given(st.integers(min_value=0, max_value=364), st.integers(min_value=0, max_value=23))
def test_a_short_window_finds_exactly_the_events_the_year_search_finds(events_2025, day, hour):
    start = YEAR_2025[0] + timedelta(days=day, hours=hour)
    end = min(start + timedelta(days=1), YEAR_2025[1])
    short = events_between(start, end)
    expected = [event for event in events_2025 if start <= event.time < end]
    assert [(e.type, e.body, e.sign) for e in short] == [(e.type, e.body, e.sign) for e in expected]
    for found, reference in zip(short, expected, strict=True):
        assert abs(found.time - reference.time) < timedelta(seconds=2)


def test_eclipse_windows_of_a_day_still_find_the_eclipse():
    day = datetime(2024, 4, 8, tzinfo=UTC)
    found = events_between(day, day + timedelta(days=1), types=["solar_eclipse"])
    assert [(event.detail, event.sign) for event in found] == [("total", "aries")]


def test_event_json_uses_iso_utc_times_and_lower_case_signs(events_2025):
    document = json.loads(json.dumps([event.to_dict() for event in events_2025]))
    first = document[0]
    assert {"type", "body", "time", "sign", "longitude"} <= set(first)
    assert all(item["time"].endswith("Z") and len(item["time"]) == 20 for item in document)
    assert all(item["sign"] == item["sign"].lower() for item in document)
    assert all(0.0 <= item["longitude"] < 360.0 for item in document)


def test_bad_ranges_and_names_are_refused():
    start, end = YEAR_2025
    with pytest.raises(ValueError, match="after"):
        events_between(end, start)
    with pytest.raises(ValueError, match="unknown bodies"):
        events_between(start, end, bodies=["vulcan"])
    with pytest.raises(ValueError, match="unknown event types"):
        events_between(start, end, types=["comet"])
