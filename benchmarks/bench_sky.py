"""Sky engine speed: one instant's full sky, a year of events, a day's transits for all signs.

Run with `python -m benchmarks.bench_sky`; `run()` returns the numbers as a dict. The naive
Skyfield pipeline (one `observe().apparent()` per body) is timed in the same run so the
speed-up is a ratio on the same machine, not an absolute number from elsewhere.
"""

import json
import statistics
import time
from datetime import UTC, datetime, timedelta

SKY_INSTANT_TARGET_MS = 5.0
YEAR_EVENTS_TARGET_S = 10.0
NAIVE_TARGETS = (
    "sun",
    "moon",
    "mercury",
    "venus",
    "mars",
    "jupiter barycenter",
    "saturn barycenter",
    "uranus barycenter",
    "neptune barycenter",
    "pluto barycenter",
)


def _instants(count: int) -> list[datetime]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [start + timedelta(hours=37 * index + 0.61 * index) for index in range(count)]


def _timed_ms(function, arguments) -> list[float]:
    timings = []
    for argument in arguments:
        began = time.perf_counter()
        function(argument)
        timings.append((time.perf_counter() - began) * 1000.0)
    return timings


def _naive_sky(when: datetime) -> None:
    """Skyfield's documented way, body by body, for comparison (positions and speeds)."""
    import numpy as np
    from skyfield.framelib import ecliptic_frame

    from forecasts.sky.ephemeris import ephemeris

    eph = ephemeris()
    t0 = eph.timescale.from_datetime(when)
    t = eph.timescale.tt_jd(t0.tt + np.array([-1.0 / 144.0, 0.0, 1.0 / 144.0]))
    earth = eph.kernel["earth"].at(t)
    for name in NAIVE_TARGETS:
        earth.observe(eph.kernel[name]).apparent().frame_latlon(ecliptic_frame)


def run() -> dict:
    from forecasts.sky import events_between, sky_at
    from forecasts.sky.ephemeris import ephemeris
    from forecasts.writing.transits import sky_window, transits_for_all_signs

    began = time.perf_counter()
    ephemeris()
    load_ms = (time.perf_counter() - began) * 1000.0

    warm_up = _instants(20)
    for when in warm_up:
        sky_at(when)
        _naive_sky(when)
    instants = _instants(300)
    ours = _timed_ms(sky_at, instants)
    naive = _timed_ms(_naive_sky, instants[:100])

    year = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    year_runs = []
    for _ in range(2):
        began = time.perf_counter()
        events = events_between(*year)
        year_runs.append(time.perf_counter() - began)

    day = (datetime(2025, 3, 14, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC))
    sky_window.cache_clear()
    began = time.perf_counter()
    transits_for_all_signs(*day)
    transits_ms = (time.perf_counter() - began) * 1000.0

    sky_instant_ms = statistics.median(ours)
    year_events_s = min(year_runs)
    return {
        "sky_instant_ms": round(sky_instant_ms, 3),
        "sky_instant_p95_ms": round(statistics.quantiles(ours, n=20)[-1], 3),
        "naive_skyfield_instant_ms": round(statistics.median(naive), 3),
        "sky_instant_speedup_vs_naive": round(statistics.median(naive) / sky_instant_ms, 2),
        "year_events_s": round(year_events_s, 3),
        "year_events_count": len(events),
        "day_transits_all_signs_ms": round(transits_ms, 1),
        "ephemeris_load_ms": round(load_ms, 1),
        "sky_instant_target_ms": SKY_INSTANT_TARGET_MS,
        "year_events_target_s": YEAR_EVENTS_TARGET_S,
        "meets_targets": sky_instant_ms < SKY_INSTANT_TARGET_MS and year_events_s < YEAR_EVENTS_TARGET_S,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
