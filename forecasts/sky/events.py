"""Sky events in a time range, each timed by root finding to well under a minute.

Sign ingresses of every body, stations of Mercury to Pluto, the four lunar phases, and
solar and lunar eclipses. Every search brackets changes on a grid fine enough that no
event can hide between two samples, then Skyfield's `find_discrete` narrows each bracket
to a fraction of a second.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np
from skyfield.eclipselib import lunar_eclipses
from skyfield.searchlib import find_discrete, find_minima
from skyfield.timelib import Time

from forecasts.sky.ephemeris import (
    BODY_SLUGS,
    STATION_BODY_SLUGS,
    SUPPORTED_END,
    SUPPORTED_START,
    apparent_vectors_km,
    display_longitude,
    ecliptic_coordinates,
    ephemeris,
    iso_utc,
    longitudes_at,
    speeds_at,
    to_time,
)
from forecasts.zodiac import SIGN_SLUGS, sign_for_longitude

EVENT_TYPES: tuple[str, ...] = (
    "ingress",
    "station_retrograde",
    "station_direct",
    "new_moon",
    "first_quarter",
    "full_moon",
    "last_quarter",
    "solar_eclipse",
    "lunar_eclipse",
)
LUNATION_TYPES: tuple[str, ...] = ("new_moon", "first_quarter", "full_moon", "last_quarter")
STATION_TYPES: tuple[str, ...] = ("station_retrograde", "station_direct")
ECLIPSE_TYPES: tuple[str, ...] = ("solar_eclipse", "lunar_eclipse")

SEARCH_EPSILON_DAYS = 0.1 / 86400.0
# Between two stations a body's longitude is monotonic, so it crosses each sign boundary
# once and spends at least 30 deg / (top speed) in a sign: the Moon ~1.9 days, Mercury
# ~13 days, the Sun ~29 days. The grid step must stay below that.
INGRESS_STEP_DAYS: dict[str, float] = {
    "moon": 0.5,
    "sun": 5.0,
    "mercury": 3.0,
    "venus": 5.0,
    "mars": 5.0,
    "north_node": 30.0,
}
DEFAULT_INGRESS_STEP_DAYS = 10.0
# Mercury's retrograde spells, the shortest gap between two stations, last ~3 weeks.
STATION_STEP_DAYS = 5.0
# Quarter phases are ~6.5-8 days apart.
LUNATION_STEP_DAYS = 2.0

LUNAR_ECLIPSE_KINDS = ("penumbral", "partial", "total")
EARTH_RADIUS_KM = 6378.137
SUN_RADIUS_KM = 696000.0
MOON_RADIUS_KM = 1737.4
# Beyond this ecliptic latitude at new moon the Moon's penumbra misses the Earth.
SOLAR_ECLIPSE_LATITUDE_LIMIT_DEG = 1.6


@dataclass(frozen=True)
class SkyEvent:
    """One dated event in the sky."""

    type: str  # one of EVENT_TYPES
    body: str  # the body that moves (the Moon for lunations and lunar eclipses, the Sun for solar eclipses)
    time: datetime  # aware UTC
    sign: str  # the sign the body is in at that moment (the new sign for an ingress)
    longitude: float  # the body's longitude at that moment
    detail: str | None = None  # eclipse kind (total, annular, hybrid, partial, penumbral)
    from_sign: str | None = None  # for an ingress, the sign just left

    def to_dict(self) -> dict:
        return {
            "type": self.type,
            "body": self.body,
            "time": iso_utc(self.time),
            "sign": self.sign,
            "longitude": display_longitude(self.longitude),
            "detail": self.detail,
            "from_sign": self.from_sign,
        }


def events_between(
    start: datetime,
    end: datetime,
    bodies: Iterable[str] | None = None,
    types: Iterable[str] | None = None,
) -> list[SkyEvent]:
    """Every event of the given types for the given bodies in [start, end), in time order."""
    if end <= start:
        raise ValueError("end must be after start")
    wanted_bodies = list(BODY_SLUGS if bodies is None else bodies)
    unknown = set(wanted_bodies) - set(BODY_SLUGS)
    if unknown:
        raise ValueError(f"unknown bodies: {', '.join(sorted(unknown))}")
    wanted_types = set(EVENT_TYPES if types is None else types)
    if wanted_types - set(EVENT_TYPES):
        raise ValueError(f"unknown event types: {', '.join(sorted(wanted_types - set(EVENT_TYPES)))}")
    t0, t1 = to_time(start), to_time(end)

    events: list[SkyEvent] = []
    for body in wanted_bodies:
        stations = _stations(body, t0, t1) if body in STATION_BODY_SLUGS else []
        events.extend(event for event in stations if event.type in wanted_types)
        if "ingress" in wanted_types:
            events.extend(_ingresses(body, t0, t1, [event.time for event in stations]))
    if "moon" in wanted_bodies and wanted_types & {*LUNATION_TYPES, "lunar_eclipse"}:
        events.extend(event for event in _lunations(t0, t1) if event.type in wanted_types)
        if "lunar_eclipse" in wanted_types:
            events.extend(_lunar_eclipses(start, end))
    if "sun" in wanted_bodies and "solar_eclipse" in wanted_types:
        events.extend(_solar_eclipses(start, end))
    return sorted(
        (event for event in events if start <= event.time < end),
        key=lambda event: (event.time, EVENT_TYPES.index(event.type), BODY_SLUGS.index(event.body)),
    )


def _event(kind: str, body: str, t: Time, **extra) -> SkyEvent:
    longitude = float(longitudes_at(t, [body])[0, 0])
    return SkyEvent(kind, body, t.utc_datetime(), sign_for_longitude(longitude).slug, longitude, **extra)


def _stations(body: str, t0: Time, t1: Time) -> list[SkyEvent]:
    def is_retrograde(t):
        return speeds_at(t, [body])[0] < 0.0

    is_retrograde.step_days = STATION_STEP_DAYS
    times, retrograde = find_discrete(t0, t1, is_retrograde, epsilon=SEARCH_EPSILON_DAYS)
    return [
        _event("station_retrograde" if now_retrograde else "station_direct", body, t)
        for t, now_retrograde in zip(times, retrograde, strict=True)
    ]


def _ingresses(body: str, t0: Time, t1: Time, station_times: list[datetime]) -> list[SkyEvent]:
    def sign_index(t):
        return (longitudes_at(t, [body])[0] // 30.0).astype(int) % 12

    sign_index.step_days = INGRESS_STEP_DAYS.get(body, DEFAULT_INGRESS_STEP_DAYS)
    # Search each stretch between stations on its own: inside one the longitude is monotonic,
    # so a quick back-and-forth over a cusp around a station cannot slip between samples.
    edges = [t0, *(to_time(when) for when in station_times), t1]
    events = []
    for left, right in pairwise(edges):
        if right.tt - left.tt <= SEARCH_EPSILON_DAYS:
            continue
        before = int(sign_index(left)[0])
        times, new_signs = find_discrete(left, right, sign_index, epsilon=SEARCH_EPSILON_DAYS)
        for t, new_sign in zip(times, new_signs, strict=True):
            longitude = float(longitudes_at(t, [body])[0, 0])
            events.append(
                SkyEvent(
                    "ingress", body, t.utc_datetime(), SIGN_SLUGS[new_sign], longitude, from_sign=SIGN_SLUGS[before]
                )
            )
            before = int(new_sign)
    return events


def _lunations(t0: Time, t1: Time) -> list[SkyEvent]:
    def quarter(t):
        sun, moon = longitudes_at(t, ["sun", "moon"])
        return ((moon - sun) % 360.0 // 90.0).astype(int)

    quarter.step_days = LUNATION_STEP_DAYS
    times, quarters = find_discrete(t0, t1, quarter, epsilon=SEARCH_EPSILON_DAYS)
    return [_event(LUNATION_TYPES[q], "moon", t) for t, q in zip(times, quarters, strict=True)]


def _widened(start: datetime, end: datetime, days: float) -> tuple[Time, Time]:
    # Extremum searches cannot see an extremum at the very edge of their range, so search a
    # wider one and keep what falls inside.
    margin = timedelta(days=days)
    return to_time(max(start - margin, SUPPORTED_START)), to_time(min(end + margin, SUPPORTED_END))


def _lunar_eclipses(start: datetime, end: datetime) -> list[SkyEvent]:
    t0, t1 = _widened(start, end, 10.0)
    times, kinds, _ = lunar_eclipses(t0, t1, ephemeris().kernel)
    return [
        _event("lunar_eclipse", "moon", t, detail=LUNAR_ECLIPSE_KINDS[kind])
        for t, kind in zip(times, kinds, strict=True)
    ]


def _solar_eclipses(start: datetime, end: datetime) -> list[SkyEvent]:
    t0, t1 = _widened(start, end, 1.0)
    events = []
    for new_moon in (event for event in _lunations(t0, t1) if event.type == "new_moon"):
        t = to_time(new_moon.time)
        _, latitudes = ecliptic_coordinates(t, ["moon"])
        if abs(float(latitudes[0, 0])) > SOLAR_ECLIPSE_LATITUDE_LIMIT_DEG:
            continue
        greatest, kind = _solar_eclipse_at(t)
        if kind is not None:
            events.append(_event("solar_eclipse", "sun", greatest, detail=kind))
    return events


def _shadow_geometry(t: Time) -> dict[str, np.ndarray]:
    """The Moon's shadow cone against the Earth (Besselian-element style), from apparent places."""
    vectors = apparent_vectors_km(t, ["sun", "moon"])
    sun, moon = vectors[:, 0, :], vectors[:, 1, :]
    sun_to_moon = moon - sun
    sun_moon_distance = np.linalg.norm(sun_to_moon, axis=0)
    axis = sun_to_moon / sun_moon_distance
    along = np.einsum("i...,i...", moon, axis)
    # Distance of the Earth's centre from the shadow axis, and from the Moon along it.
    miss = np.linalg.norm(moon - along * axis, axis=0)
    moon_to_plane = -along
    penumbra_angle = np.arcsin((SUN_RADIUS_KM + MOON_RADIUS_KM) / sun_moon_distance)
    umbra_angle = np.arcsin((SUN_RADIUS_KM - MOON_RADIUS_KM) / sun_moon_distance)
    return {
        "miss": miss,
        "moon_to_plane": moon_to_plane,
        "penumbra_radius": moon_to_plane * np.tan(penumbra_angle) + MOON_RADIUS_KM / np.cos(penumbra_angle),
        "umbra_angle": umbra_angle,
    }


def _umbra_radius(geometry: dict, moon_distance: np.ndarray) -> np.ndarray:
    """Radius of the umbra (positive) or antumbra (negative) this far from the Moon."""
    angle = geometry["umbra_angle"]
    return MOON_RADIUS_KM / np.cos(angle) - moon_distance * np.tan(angle)


def _solar_eclipse_at(new_moon: Time) -> tuple[Time, str | None]:
    """Greatest eclipse near a new moon (the shadow axis closest to the Earth's centre) and its kind."""

    def miss(t):
        return _shadow_geometry(t)["miss"]

    miss.step_days = 0.05
    ts = new_moon.ts
    times, _ = find_minima(ts.tt_jd(new_moon.tt - 0.3), ts.tt_jd(new_moon.tt + 0.3), miss)
    greatest = times[0] if len(times) else new_moon
    geometry = {key: np.atleast_1d(value)[0] for key, value in _shadow_geometry(greatest).items()}
    distance = geometry["miss"]
    if distance >= EARTH_RADIUS_KM + geometry["penumbra_radius"]:
        return greatest, None
    at_plane = _umbra_radius(geometry, geometry["moon_to_plane"])
    if distance < EARTH_RADIUS_KM:
        # The axis meets the Earth: compare umbra at the nearest surface point and at the limb.
        surface = geometry["moon_to_plane"] - np.sqrt(EARTH_RADIUS_KM**2 - distance**2)
        at_surface = _umbra_radius(geometry, surface)
        if at_surface > 0.0:
            return greatest, "total" if at_plane > 0.0 else "hybrid"
        return greatest, "annular"
    if distance < EARTH_RADIUS_KM + abs(at_plane):
        # Axis misses, but an edge of the umbra or antumbra grazes the Earth (non-central).
        return greatest, "total" if at_plane > 0.0 else "annular"
    return greatest, "partial"
