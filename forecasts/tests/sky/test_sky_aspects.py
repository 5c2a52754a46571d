"""Aspects: orbs, applying or separating, and the instant an aspect perfects."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasts.sky import ASPECT_KINDS_BY_NAME, NODE, BodyPosition, find_aspects, orb_limit, perfection_times, sky_at
from forecasts.sky.aspects import aspect_between, separation
from forecasts.sky.ephemeris import positions_at

REFERENCE = json.loads((Path(__file__).parent / "data" / "sky_reference.json").read_text())
PHASE_ASPECTS = {
    "new_moon": "conjunction",
    "first_quarter": "square",
    "full_moon": "opposition",
    "last_quarter": "square",
}


def at(body: str, longitude: float, speed: float = 0.0) -> BodyPosition:
    return BodyPosition(body, longitude % 360.0, 0.0, speed)


def test_orbs_are_wider_for_the_luminaries_and_narrower_for_sextiles():
    square, sextile = ASPECT_KINDS_BY_NAME["square"], ASPECT_KINDS_BY_NAME["sextile"]
    assert orb_limit(square, "sun", "mars") == 8.0
    assert orb_limit(square, "venus", "mars") == 6.0
    assert orb_limit(sextile, "moon", "mars") < orb_limit(square, "moon", "mars")
    assert orb_limit(sextile, "venus", "mars") < orb_limit(square, "venus", "mars")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (10.0, 12.0, "conjunction"),
        (355.0, 3.0, "conjunction"),  # across 0 Aries
        (10.0, 72.0, "sextile"),
        (10.0, 97.0, "square"),
        (10.0, 283.0, "square"),  # the other way round the circle
        (10.0, 125.0, "trine"),
        (10.0, 186.0, "opposition"),
    ],
)
def test_aspects_are_named_by_the_angle_between_longitudes(a, b, expected):
    aspect = aspect_between(at("sun", a), at("mars", b))
    assert aspect is not None
    assert aspect.aspect == expected


def test_nothing_is_reported_outside_the_orb():
    assert aspect_between(at("venus", 10.0), at("mars", 17.0)) is None  # 7 deg: beyond a planet's 6
    assert aspect_between(at("venus", 10.0), at("mars", 75.0)) is None  # 65 deg: beyond a sextile's 4
    assert aspect_between(at("sun", 10.0), at("mars", 17.0)) is not None  # the Sun's 8 deg orb


def test_applying_when_the_faster_body_closes_the_gap():
    # The Moon 95 deg from the Sun: moving back towards it the square tightens, moving on it widens.
    closing = aspect_between(at("sun", 0.0, 1.0), at("moon", 95.0, -13.0))
    opening = aspect_between(at("sun", 0.0, 1.0), at("moon", 95.0, 13.0))
    assert closing.applying and not opening.applying
    assert closing.orb == pytest.approx(5.0)


def test_the_node_takes_no_aspects_and_aspects_come_tightest_first():
    positions = {
        "sun": at("sun", 0.0, 1.0),
        "mars": at("mars", 91.0, 0.5),
        "venus": at("venus", 2.0, 1.2),
        NODE: at(NODE, 0.5, -0.05),
    }
    aspects = find_aspects(positions)
    assert [aspect.orb for aspect in aspects] == sorted(aspect.orb for aspect in aspects)
    assert all(NODE not in aspect.bodies for aspect in aspects)
    assert {(aspect.body_a, aspect.body_b, aspect.aspect) for aspect in aspects} == {
        ("sun", "venus", "conjunction"),
        ("sun", "mars", "square"),
        ("venus", "mars", "square"),
    }


@settings(max_examples=25, deadline=None, database=None)
@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)))
def test_applying_aspects_tighten_and_separating_ones_widen(when):
    snapshot = sky_at(when)
    later = positions_at(when + timedelta(minutes=10))
    for aspect in snapshot.aspects:
        if aspect.orb < 0.05:  # too close to exact for the direction to be measurable
            continue
        kind = ASPECT_KINDS_BY_NAME[aspect.aspect]
        orb_later = abs(separation(later[aspect.body_a], later[aspect.body_b]) - kind.angle)
        if abs(orb_later - aspect.orb) < 1e-6:
            # Two slow bodies at nearly the same speed (Neptune and Pluto in June 1993 moved
            # 0.00000001 degrees apart in 10 minutes): no direction to measure either.
            continue
        assert (orb_later < aspect.orb) == aspect.applying, aspect


@pytest.mark.parametrize("item", REFERENCE["moon_phases"][:8], ids=lambda item: item["time"])
def test_sun_moon_aspects_perfect_at_the_usno_lunar_phases(item):
    expected = datetime.fromisoformat(item["time"].replace("Z", "+00:00"))
    window = (expected - timedelta(hours=12), expected + timedelta(hours=12))
    times = perfection_times("sun", "moon", PHASE_ASPECTS[item["type"]], *window)
    assert len(times) == 1
    assert abs(times[0] - expected) <= timedelta(minutes=2)


def test_slow_conjunctions_are_timed_too():
    # Jupiter and Saturn's "great conjunction" of December 2020.
    times = perfection_times(
        "jupiter", "saturn", "conjunction", datetime(2020, 12, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)
    )
    assert len(times) == 1
    exact = positions_at(times[0])
    assert separation(exact["jupiter"], exact["saturn"]) < 1e-3


def test_a_window_without_the_aspect_gives_no_times():
    day = datetime(2020, 1, 10, tzinfo=UTC)  # a full moon: the Sun and Moon are opposite, not conjunct
    assert perfection_times("sun", "moon", "conjunction", day, day + timedelta(days=1)) == []
    assert perfection_times("sun", "moon", "opposition", day + timedelta(days=1), day) == []
