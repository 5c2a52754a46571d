"""The real sky of any moment, computed offline from JPL's DE421 ephemeris.

Public API:
    sky_at(when) -> SkySnapshot                     every body's position, the Moon's phase, aspects
    events_between(start, end, bodies=None, types=None) -> list[SkyEvent]
    perfection_times(body_a, body_b, aspect, start, end) -> list[datetime]
    sky_wheel_svg(snapshot, size=360, title=None) -> str   a zodiac wheel as SVG

All datetimes are timezone-aware; results are in UTC.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from forecasts.sky.aspects import (
    ASPECT_KINDS,
    ASPECT_KINDS_BY_NAME,
    Aspect,
    AspectKind,
    find_aspects,
    orb_limit,
    perfection_times,
)
from forecasts.sky.ephemeris import (
    BODIES,
    BODIES_BY_SLUG,
    BODY_SLUGS,
    MOON_PHASE_NAMES,
    NODE,
    PLANET_SLUGS,
    STATION_BODY_SLUGS,
    SUPPORTED_END,
    SUPPORTED_START,
    Body,
    BodyPosition,
    MoonPhase,
    iso_utc,
    moon_phase_from,
    positions_at,
)
from forecasts.sky.events import EVENT_TYPES, LUNATION_TYPES, STATION_TYPES, SkyEvent, events_between
from forecasts.sky.wheel import sky_wheel_svg


@dataclass(frozen=True)
class SkySnapshot:
    """The sky at one instant, as the zodiac sees it from the Earth's centre."""

    at: datetime
    bodies: dict[str, BodyPosition]
    moon_phase: MoonPhase
    aspects: list[Aspect]

    def to_dict(self) -> dict:
        return {
            "at": iso_utc(self.at),
            "bodies": {slug: position.to_dict() for slug, position in self.bodies.items()},
            "moon_phase": self.moon_phase.to_dict(),
            "aspects": [aspect.to_dict() for aspect in self.aspects],
        }


def sky_at(when: datetime) -> SkySnapshot:
    """Positions of the Sun, Moon, planets and mean node, the Moon's phase and the aspects in orb."""
    positions = positions_at(when)
    phase = moon_phase_from(positions["sun"].longitude, positions["moon"].longitude)
    return SkySnapshot(when.astimezone(UTC), positions, phase, find_aspects(positions))


__all__ = [
    "ASPECT_KINDS",
    "ASPECT_KINDS_BY_NAME",
    "BODIES",
    "BODIES_BY_SLUG",
    "BODY_SLUGS",
    "EVENT_TYPES",
    "LUNATION_TYPES",
    "MOON_PHASE_NAMES",
    "NODE",
    "PLANET_SLUGS",
    "STATION_BODY_SLUGS",
    "STATION_TYPES",
    "SUPPORTED_END",
    "SUPPORTED_START",
    "Aspect",
    "AspectKind",
    "Body",
    "BodyPosition",
    "MoonPhase",
    "SkyEvent",
    "SkySnapshot",
    "events_between",
    "find_aspects",
    "iso_utc",
    "orb_limit",
    "perfection_times",
    "sky_at",
    "sky_wheel_svg",
]
