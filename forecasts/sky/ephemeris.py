"""Where the Sun, Moon, planets and lunar node are, seen from the Earth's centre.

Longitudes are geocentric *apparent* ecliptic longitudes *of date* (true ecliptic and
equinox of the moment), the zodiac astrologers use. J2000 coordinates would be 0.35 deg off
and would shift ingresses by hours. Positions come from JPL's DE421 file shipped by the
`skyfield-data` package, read through Skyfield, so nothing is ever downloaded.

For speed the apparent place is computed here from the raw ephemeris segments, vectorised
over time and bodies, instead of calling Skyfield's `observe().apparent()` once per body:
light time, the Sun's light deflection and aberration are applied exactly as Skyfield does
(it agrees with `earth.at(t).observe(body).apparent().frame_latlon(ecliptic_frame)` to far
better than an arc-second). Deflection by Jupiter and Saturn, below a milli-arc-second away
from their discs, is left out.
"""

import functools
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from skyfield.api import Loader, load
from skyfield.framelib import ecliptic_frame
from skyfield.nutationlib import iau2000b_radians
from skyfield.relativity import add_aberration
from skyfield.timelib import Time, Timescale

from forecasts.zodiac import sign_for_longitude

AU_KM = 149597870.700
LIGHT_KM_PER_DAY = 299792.458 * 86400.0
# The Sun's gravitational parameter over c^2, in km (IERS conventions): sets light deflection.
SUN_GRAVITATIONAL_RADIUS_KM = 1.476625

# Central differences over +/- 10 minutes give speeds good to ~1e-6 deg/day and put the zero
# of a planet's speed (its station) within a fraction of a second of the true extremum.
SPEED_HALF_STEP_DAYS = 10.0 / 1440.0

# DE421 runs from 1899-07-29 to 2053-10-08; keep a margin for light time and speed steps.
SUPPORTED_START = datetime(1900, 1, 1, tzinfo=UTC)
SUPPORTED_END = datetime(2053, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Body:
    slug: str
    name: str
    glyph: str
    # NAIF segments summed to reach the body from the solar-system barycentre; () for the node.
    segments: tuple[tuple[int, int], ...]

    @property
    def stations(self) -> bool:
        """Whether the body ever turns retrograde in true motion (Mercury to Pluto)."""
        return self.slug in STATION_BODY_SLUGS


# U+FE0E asks for the text (not emoji) form of each glyph, as in forecasts.zodiac.
BODIES: tuple[Body, ...] = (
    Body("sun", "Sun", "\u2609\ufe0e", ((0, 10),)),
    Body("moon", "Moon", "\u263d\ufe0e", ((0, 3), (3, 301))),
    Body("mercury", "Mercury", "\u263f\ufe0e", ((0, 1), (1, 199))),
    Body("venus", "Venus", "\u2640\ufe0e", ((0, 2), (2, 299))),
    Body("mars", "Mars", "\u2642\ufe0e", ((0, 4), (4, 499))),
    # DE421 has only the barycentres of the outer planet systems; their offsets from the
    # planets themselves are far below an arc-second as seen from the Earth.
    Body("jupiter", "Jupiter", "\u2643\ufe0e", ((0, 5),)),
    Body("saturn", "Saturn", "\u2644\ufe0e", ((0, 6),)),
    Body("uranus", "Uranus", "\u2645\ufe0e", ((0, 7),)),
    Body("neptune", "Neptune", "\u2646\ufe0e", ((0, 8),)),
    Body("pluto", "Pluto", "\u2647\ufe0e", ((0, 9),)),
    Body("north_node", "North Node", "\u260a\ufe0e", ()),
)
BODIES_BY_SLUG: dict[str, Body] = {body.slug: body for body in BODIES}
BODY_SLUGS: tuple[str, ...] = tuple(body.slug for body in BODIES)
PLANET_SLUGS: tuple[str, ...] = BODY_SLUGS[:10]
STATION_BODY_SLUGS: tuple[str, ...] = ("mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto")
NODE = "north_node"
EARTH_SEGMENTS = ((0, 3), (3, 399))

MOON_PHASE_NAMES: tuple[str, ...] = (
    "new",
    "waxing_crescent",
    "first_quarter",
    "waxing_gibbous",
    "full",
    "waning_gibbous",
    "last_quarter",
    "waning_crescent",
)
# The four named instants (new, quarters, full) are given a few degrees either side, the
# way almanacs and columns speak of "the full Moon" for the day around it.
MOON_PHASE_HALF_WIDTH_DEG = 6.0


@dataclass(frozen=True)
class BodyPosition:
    """One body's place in the zodiac at an instant."""

    body: str
    longitude: float  # degrees, 0 <= longitude < 360, apparent ecliptic of date
    latitude: float  # degrees
    speed: float  # degrees of longitude per day; negative while retrograde

    @property
    def sign(self) -> str:
        return sign_for_longitude(self.longitude).slug

    @property
    def sign_index(self) -> int:
        return int(self.longitude // 30.0) % 12

    @property
    def degree(self) -> float:
        """Degrees into the sign, 0 <= degree < 30."""
        return self.longitude - 30.0 * self.sign_index

    @property
    def retrograde(self) -> bool:
        # The mean node moves backwards by definition; planets when their speed is negative.
        return self.speed < 0.0

    def to_dict(self) -> dict:
        longitude = display_longitude(self.longitude)
        return {
            "longitude": longitude,
            "latitude": round(self.latitude, 6),
            "sign": self.sign,
            "degree": round(longitude - 30.0 * self.sign_index, 6),
            "speed": round(self.speed, 6),
            "retrograde": self.retrograde,
        }


@dataclass(frozen=True)
class MoonPhase:
    """The Moon's phase at an instant."""

    elongation: float  # Moon's longitude minus the Sun's, 0 <= elongation < 360 degrees
    illumination: float  # fraction of the disc lit, 0..1
    name: str  # one of MOON_PHASE_NAMES

    @property
    def waxing(self) -> bool:
        return self.elongation < 180.0

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    def to_dict(self) -> dict:
        return {
            "elongation": round(self.elongation, 4),
            "illumination": round(self.illumination, 4),
            "name": self.name,
            "waxing": self.waxing,
        }


class _Ephemeris:
    """DE421 and Skyfield's builtin timescale, loaded once on first use."""

    def __init__(self) -> None:
        # skyfield-data warns that its bundled Earth-orientation table is old; we only use
        # the builtin timescale, so the warning does not concern us.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            import skyfield_data

            path = skyfield_data.get_skyfield_data_path()
        self.timescale: Timescale = load.timescale(builtin=True)
        self.kernel = Loader(path, expire=False, verbose=False)("de421.bsp")
        self._segments = {(s.center, s.target): s.spk_segment for s in self.kernel.segments}

    def barycentric_km(self, segments: Sequence[tuple[int, int]], whole, fraction) -> np.ndarray:
        total = self._segments[segments[0]].compute(whole, fraction)
        for pair in segments[1:]:
            total = total + self._segments[pair].compute(whole, fraction)
        return total

    def earth_state_km(self, whole, fraction) -> tuple[np.ndarray, np.ndarray]:
        position = np.zeros((3, np.size(whole)))
        velocity = np.zeros((3, np.size(whole)))
        for pair in EARTH_SEGMENTS:
            p, v = self._segments[pair].compute_and_differentiate(whole, fraction)
            position += p
            velocity += v
        return position, velocity  # km and km/day


@functools.cache
def ephemeris() -> _Ephemeris:
    """The loaded ephemeris: opened on first use (never at import), then shared by the process."""
    return _Ephemeris()


def timescale() -> Timescale:
    return ephemeris().timescale


def _require_utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no time zone; pass an aware UTC datetime")
    when = when.astimezone(UTC)
    if not SUPPORTED_START <= when <= SUPPORTED_END:
        raise ValueError(f"{when:%Y-%m-%d} is outside the ephemeris range 1900-01-01..2053-01-01")
    return when


def to_time(when: datetime | Iterable[datetime]) -> Time:
    """Skyfield Time for one aware datetime, or a vector of them."""
    if isinstance(when, datetime):
        return timescale().from_datetime(_require_utc(when))
    return timescale().from_datetimes([_require_utc(w) for w in when])


def to_datetime(t: Time) -> datetime:
    """The UTC datetime of a scalar Skyfield Time, rounded to the second."""
    return round_to_second(t.utc_datetime())


def round_to_second(when: datetime) -> datetime:
    return (when + timedelta(microseconds=500_000)).replace(microsecond=0)


def iso_utc(when: datetime) -> str:
    """ISO 8601 UTC to the nearest second with a Z suffix, e.g. 2025-03-20T09:01:29Z."""
    return round_to_second(when.astimezone(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _solar_deflection(position: np.ndarray, sun_to_observer: np.ndarray) -> np.ndarray:
    """Bending of light by the Sun's gravity (the same expression as Skyfield's)."""
    pmag = np.linalg.norm(position, axis=0)
    pq = position + sun_to_observer
    qmag = np.linalg.norm(pq, axis=0)
    emag = np.linalg.norm(sun_to_observer, axis=0)
    phat = position / np.where(pmag, pmag, 1.0)
    qhat = pq / np.where(qmag, qmag, 1.0)
    ehat = sun_to_observer / np.where(emag, emag, 1.0)
    pdotq = np.einsum("i...,i...", phat, qhat)
    qdote = np.einsum("i...,i...", qhat, ehat)
    edotp = np.einsum("i...,i...", ehat, phat)
    # The Sun itself, or anything exactly behind it, is not deflected.
    aligned = np.abs(edotp) > 0.99999999999
    factor = 2.0 * SUN_GRAVITATIONAL_RADIUS_KM / emag
    deflection = factor * (pdotq * ehat - edotp * qhat) / (1.0 + qdote) * pmag
    return np.where(aligned, 0.0, deflection)


def apparent_vectors_km(t: Time, slugs: Sequence[str]) -> np.ndarray:
    """Apparent geocentric positions (km, GCRS axes), shape (3, len(slugs), len(t)).

    The node has no position vector; ask `ecliptic_coordinates` for it instead.
    """
    eph = ephemeris()
    whole = np.atleast_1d(t.whole)
    fraction = np.atleast_1d(t.tdb_fraction)
    earth, earth_velocity = eph.earth_state_km(whole, fraction)
    sun = eph.barycentric_km(BODIES_BY_SLUG["sun"].segments, whole, fraction)
    vectors = np.empty((3, len(slugs), whole.size))
    light_days = np.empty((len(slugs), whole.size))
    for index, slug in enumerate(slugs):
        segments = BODIES_BY_SLUG[slug].segments
        # One light-time iteration: the residual is under a milli-arc-second even for Pluto.
        first = eph.barycentric_km(segments, whole, fraction) - earth
        delay = np.linalg.norm(first, axis=0) / LIGHT_KM_PER_DAY
        relative = eph.barycentric_km(segments, whole, fraction - delay) - earth
        vectors[:, index, :] = relative
        light_days[index] = np.linalg.norm(relative, axis=0) / LIGHT_KM_PER_DAY
    flat = vectors.reshape(3, -1)
    count = len(slugs)
    flat += _solar_deflection(flat, np.tile(earth - sun, (1, count)))
    au = flat / AU_KM
    add_aberration(au, np.tile(earth_velocity / AU_KM, (1, count)), light_days.reshape(-1))
    return (au * AU_KM).reshape(3, count, whole.size)


def _use_fast_nutation(t: Time) -> None:
    """Have Skyfield use the 77-term IAU 2000B nutation for this Time instead of 2000A.

    2000B is within a milli-arc-second of 2000A over 1995-2050 and ~20x cheaper; on long
    event searches the nutation series would otherwise dominate the run time. Skyfield
    caches the angles on the Time object, so setting them first is honoured everywhere.
    """
    if "_nutation_angles_radians" not in t.__dict__:
        t._nutation_angles_radians = iau2000b_radians(t)


def mean_node_longitude(t: Time) -> np.ndarray:
    """Mean longitude of the Moon's ascending node, degrees, on the true equinox of date.

    Meeus, Astronomical Algorithms (2nd ed.), eq. 47.7, plus the nutation in longitude so it
    sits in the same frame as the apparent planets.
    """
    _use_fast_nutation(t)
    centuries = (np.atleast_1d(t.tt) - 2451545.0) / 36525.0
    omega = (
        125.0445479
        - 1934.1362891 * centuries
        + 0.0020754 * centuries**2
        + centuries**3 / 467441.0
        - centuries**4 / 60616000.0
    )
    delta_psi_radians = np.atleast_1d(t._nutation_angles_radians[0])
    return (omega + np.degrees(delta_psi_radians)) % 360.0


def ecliptic_coordinates(t: Time, slugs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Apparent ecliptic longitude and latitude of date, degrees, each shaped (len(slugs), len(t))."""
    _use_fast_nutation(t)
    size = np.size(t.tt)
    longitudes = np.zeros((len(slugs), size))
    latitudes = np.zeros((len(slugs), size))
    solid = [slug for slug in slugs if slug != NODE]
    if solid:
        vectors = apparent_vectors_km(t, solid)
        rotation = ecliptic_frame.rotation_at(t)
        if rotation.ndim == 2:
            rotation = rotation[:, :, np.newaxis]
        x, y, z = np.einsum("ijn,jbn->ibn", rotation, vectors)
        rows = [slugs.index(slug) for slug in solid]
        longitudes[rows] = np.degrees(np.arctan2(y, x)) % 360.0
        latitudes[rows] = np.degrees(np.arctan2(z, np.hypot(x, y)))
    if NODE in slugs:
        longitudes[slugs.index(NODE)] = mean_node_longitude(t)
    return longitudes, latitudes


def longitudes_at(t: Time, slugs: Sequence[str]) -> np.ndarray:
    """Apparent ecliptic longitudes of date (degrees), shape (len(slugs), len(t))."""
    return ecliptic_coordinates(t, slugs)[0]


def display_longitude(longitude: float, places: int = 6) -> float:
    """A longitude rounded for display without being pushed across a sign boundary."""
    longitude %= 360.0
    lowest = 30.0 * (int(longitude // 30.0) % 12)
    return min(max(round(longitude, places), lowest), lowest + 30.0 - 10.0**-places)


def wrap180(degrees: np.ndarray | float) -> np.ndarray:
    """An angle brought into -180 <= angle < 180."""
    return (np.asarray(degrees) + 180.0) % 360.0 - 180.0


def speeds_at(t: Time, slugs: Sequence[str]) -> np.ndarray:
    """Longitude speeds (degrees/day) by central difference, shape (len(slugs), len(t))."""
    tt = np.atleast_1d(t.tt)
    both = t.ts.tt_jd(np.concatenate([tt - SPEED_HALF_STEP_DAYS, tt + SPEED_HALF_STEP_DAYS]))
    longitudes = longitudes_at(both, slugs)
    before, after = longitudes[:, : tt.size], longitudes[:, tt.size :]
    return wrap180(after - before) / (2.0 * SPEED_HALF_STEP_DAYS)


def _state_at(t: Time, slugs: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Longitude, latitude and speed of each body at a scalar time, in one vectorised call."""
    tt = float(np.atleast_1d(t.tt)[0])
    three = t.ts.tt_jd(np.array([tt - SPEED_HALF_STEP_DAYS, tt, tt + SPEED_HALF_STEP_DAYS]))
    longitudes, latitudes = ecliptic_coordinates(three, slugs)
    speeds = wrap180(longitudes[:, 2] - longitudes[:, 0]) / (2.0 * SPEED_HALF_STEP_DAYS)
    return longitudes[:, 1], latitudes[:, 1], speeds


def positions_at(when: datetime, slugs: Sequence[str] = BODY_SLUGS) -> dict[str, BodyPosition]:
    """Every body's zodiac position at an aware instant, keyed by body slug."""
    longitudes, latitudes, speeds = _state_at(to_time(when), list(slugs))
    return {
        slug: BodyPosition(slug, float(longitudes[i]), float(latitudes[i]), float(speeds[i]))
        for i, slug in enumerate(slugs)
    }


def moon_phase_from(sun_longitude: float, moon_longitude: float) -> MoonPhase:
    """Phase from the Sun's and Moon's ecliptic longitudes.

    Illumination uses the elongation alone (the Moon's latitude changes it by well under 1%).
    """
    elongation = (moon_longitude - sun_longitude) % 360.0
    illumination = (1.0 - math.cos(math.radians(elongation))) / 2.0
    return MoonPhase(elongation, illumination, moon_phase_name(elongation))


def moon_phase_name(elongation: float) -> str:
    """Name of the phase for a Moon-Sun elongation in degrees."""
    elongation %= 360.0
    for quarter, name in ((0.0, "new"), (90.0, "first_quarter"), (180.0, "full"), (270.0, "last_quarter")):
        if abs(float(wrap180(elongation - quarter))) < MOON_PHASE_HALF_WIDTH_DEG:
            return name
    return ("waxing_crescent", "waxing_gibbous", "waning_gibbous", "waning_crescent")[int(elongation // 90.0)]
