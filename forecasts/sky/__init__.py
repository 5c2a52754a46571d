"""The real sky of any moment, computed offline from JPL's DE421 ephemeris.

Public API:
    sky_at(when) -> SkySnapshot                     every body's position, the Moon's phase, aspects
    events_between(start, end, bodies=None, types=None) -> list[SkyEvent]
    perfection_times(body_a, body_b, aspect, start, end) -> list[datetime]
    sky_wheel_svg(snapshot, size=360, title=None) -> str   a zodiac wheel as SVG
    noon_wheel(day) -> (svg, alt)                   the wheel at noon UTC of a date, for pages and emails

All datetimes are timezone-aware; results are in UTC.
"""

import functools
import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

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


NOON_WHEEL_SIZE = 320
_DESC_RE = re.compile(r"<desc[^>]*>(.*?)</desc>", re.S)


@functools.lru_cache(maxsize=32)
def noon_wheel(day: date) -> tuple[str, str]:
    """(SVG, text alternative) of the sky at noon UTC on `day`, for pages and emails.

    ('', '') outside the ephemeris' range: a page or email then goes without its wheel.
    """
    noon = datetime.combine(day, time(12, 0), tzinfo=UTC)
    title = f"The sky at noon UTC on {day.day} {day:%B %Y}"
    try:
        svg = sky_wheel_svg(sky_at(noon), size=NOON_WHEEL_SIZE, title=title)
    except ValueError:
        return "", ""
    match = _DESC_RE.search(svg)
    positions = html.unescape(match.group(1)) if match else ""
    return svg, f"{title}: {positions}." if positions else f"{title}."


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
    "noon_wheel",
    "orb_limit",
    "perfection_times",
    "sky_at",
    "sky_wheel_svg",
]
