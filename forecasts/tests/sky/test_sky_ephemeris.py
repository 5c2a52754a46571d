"""Positions: published reference values, agreement with Skyfield's own pipeline, and invariants."""

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skyfield.framelib import ecliptic_frame, ecliptic_J2000_frame

from forecasts.sky import BODY_SLUGS, NODE, SUPPORTED_END, SUPPORTED_START, sky_at
from forecasts.sky.ephemeris import (
    ecliptic_coordinates,
    ephemeris,
    moon_phase_from,
    moon_phase_name,
    positions_at,
    timescale,
)
from forecasts.zodiac import sign_for_longitude

REFERENCE = json.loads((Path(__file__).parent / "data" / "sky_reference.json").read_text())
ARCMINUTE = 1.0 / 60.0
SKYFIELD_TARGETS = {
    "sun": "sun",
    "moon": "moon",
    "mercury": "mercury",
    "venus": "venus",
    "mars": "mars",
    "jupiter": "jupiter barycenter",
    "saturn": "saturn barycenter",
    "uranus": "uranus barycenter",
    "neptune": "neptune barycenter",
    "pluto": "pluto barycenter",
}

instants = st.datetimes(
    min_value=datetime(1950, 1, 1),
    max_value=datetime(2050, 12, 31),
    timezones=st.just(UTC),
)


def angular_difference(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("item", REFERENCE["positions"], ids=lambda item: f"{item['body']}-{item['time_tt']}")
def test_positions_match_meeus_worked_examples_within_an_arcminute(item):
    moment = datetime.fromisoformat(item["time_tt"])
    t = timescale().tt(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    longitudes, latitudes = ecliptic_coordinates(t, [item["body"]])
    assert angular_difference(float(longitudes[0, 0]), item["longitude"]) < ARCMINUTE
    assert abs(float(latitudes[0, 0]) - item["latitude"]) < ARCMINUTE


@pytest.mark.parametrize("item", REFERENCE["seasons"], ids=lambda item: item["time"])
def test_sun_sits_on_the_cardinal_points_at_usno_equinoxes_and_solstices(item):
    sun = positions_at(parse_utc(item["time"]))["sun"]
    assert angular_difference(sun.longitude, item["sun_longitude"]) < ARCMINUTE


@pytest.mark.parametrize("item", REFERENCE["moon_phases"][::7], ids=lambda item: item["time"])
def test_moon_sun_elongation_is_a_multiple_of_90_at_usno_phases(item):
    positions = positions_at(parse_utc(item["time"]))
    elongation = (positions["moon"].longitude - positions["sun"].longitude) % 360.0
    assert angular_difference(elongation, item["elongation"]) < ARCMINUTE


@settings(max_examples=25, deadline=None, database=None)
@given(instants)
def test_fast_pipeline_agrees_with_skyfield_observe_apparent_of_date(when):
    kernel = ephemeris().kernel
    t = timescale().from_datetime(when)
    earth = kernel["earth"].at(t)
    ours = positions_at(when)
    for slug, target in SKYFIELD_TARGETS.items():
        latitude, longitude, _ = earth.observe(kernel[target]).apparent().frame_latlon(ecliptic_frame)
        assert angular_difference(ours[slug].longitude, longitude.degrees) < 0.1 / 3600.0
        assert abs(ours[slug].latitude - latitude.degrees) < 0.1 / 3600.0


def test_longitudes_are_of_date_not_j2000():
    # Precession since 2000 moves the equinox ~0.35 deg by 2025: using J2000 would be wrong.
    when = datetime(2025, 3, 20, tzinfo=UTC)
    kernel = ephemeris().kernel
    t = timescale().from_datetime(when)
    _, j2000, _ = kernel["earth"].at(t).observe(kernel["mars"]).apparent().frame_latlon(ecliptic_J2000_frame)
    shift = positions_at(when)["mars"].longitude - j2000.degrees
    assert 0.33 < shift < 0.37


@settings(max_examples=40, deadline=None, database=None)
@given(instants)
def test_retrograde_flags_agree_with_the_sign_of_the_speed(when):
    for position in sky_at(when).bodies.values():
        assert position.retrograde == (position.speed < 0.0)
        assert 0.0 <= position.longitude < 360.0
        assert 0.0 <= position.degree < 30.0
        assert position.sign == sign_for_longitude(position.longitude).slug


@settings(max_examples=20, deadline=None, database=None)
@given(instants)
def test_speed_is_the_rate_of_change_of_longitude(when):
    hour = timedelta(hours=1)
    before, now, after = positions_at(when - hour), positions_at(when), positions_at(when + hour)
    for slug, position in now.items():
        moved = (after[slug].longitude - before[slug].longitude + 180.0) % 360.0 - 180.0
        assert position.speed == pytest.approx(moved / (2.0 / 24.0), abs=0.02)


@settings(max_examples=20, deadline=None, database=None)
@given(instants)
def test_sun_and_moon_never_go_retrograde_and_the_mean_node_always_does(when):
    bodies = sky_at(when).bodies
    assert 0.94 < bodies["sun"].speed < 1.03
    assert 11.7 < bodies["moon"].speed < 15.5
    assert bodies[NODE].retrograde
    assert bodies[NODE].speed == pytest.approx(-0.05295, abs=1e-4)
    assert bodies[NODE].latitude == 0.0


def test_snapshot_holds_every_body_and_serialises_to_json():
    snapshot = sky_at(datetime(2025, 3, 20, 9, 1, 29, tzinfo=UTC))
    assert list(snapshot.bodies) == list(BODY_SLUGS)
    document = json.loads(json.dumps(snapshot.to_dict()))
    assert document["at"] == "2025-03-20T09:01:29Z"
    assert set(document["bodies"]["sun"]) == {"longitude", "latitude", "sign", "degree", "speed", "retrograde"}
    # USNO gives the equinox as 09:01; its exact instant is 09:01:28.9, so the Sun has just entered Aries.
    assert document["bodies"]["sun"]["sign"] == "aries"
    assert document["bodies"]["mercury"]["retrograde"] is True
    assert document["moon_phase"]["name"] == "waning_gibbous"


def test_displayed_longitude_never_crosses_into_the_next_sign():
    snapshot = sky_at(datetime(2025, 3, 20, 9, 1, 28, tzinfo=UTC))  # the Sun a hair before 0 Aries
    sun = snapshot.to_dict()["bodies"]["sun"]
    assert sun["sign"] == "pisces"
    assert sun["longitude"] < 360.0
    assert sun["degree"] < 30.0


@pytest.mark.parametrize(
    ("elongation", "name"),
    [
        (0.0, "new"),
        (359.0, "new"),
        (45.0, "waxing_crescent"),
        (90.0, "first_quarter"),
        (135.0, "waxing_gibbous"),
        (180.0, "full"),
        (225.0, "waning_gibbous"),
        (270.0, "last_quarter"),
        (315.0, "waning_crescent"),
    ],
)
def test_moon_phase_names_follow_the_elongation(elongation, name):
    assert moon_phase_name(elongation) == name


def test_moon_phase_illumination_runs_from_dark_to_full():
    assert moon_phase_from(10.0, 10.0).illumination == pytest.approx(0.0)
    assert moon_phase_from(10.0, 100.0).illumination == pytest.approx(0.5)
    assert moon_phase_from(10.0, 190.0).illumination == pytest.approx(1.0)
    assert moon_phase_from(100.0, 10.0).waxing is False


def test_naive_datetimes_and_dates_outside_the_ephemeris_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        sky_at(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="outside"):
        sky_at(SUPPORTED_START - timedelta(days=1))
    with pytest.raises(ValueError, match="outside"):
        sky_at(SUPPORTED_END + timedelta(days=1))


def test_other_time_zones_are_converted_to_utc():
    from zoneinfo import ZoneInfo

    local = datetime(2025, 6, 1, 12, 0, tzinfo=ZoneInfo("America/New_York"))
    assert sky_at(local).at == datetime(2025, 6, 1, 16, 0, tzinfo=UTC)
    assert sky_at(local).bodies["moon"].longitude == pytest.approx(
        sky_at(datetime(2025, 6, 1, 16, 0, tzinfo=UTC)).bodies["moon"].longitude
    )


def test_ephemeris_is_loaded_once_and_reused():
    assert ephemeris() is ephemeris()
    assert math.isfinite(float(np.asarray(positions_at(datetime(2000, 1, 1, tzinfo=UTC))["pluto"].longitude)))
