"""The offline composer over a whole year: every reading of every sign is true to the sky, and
every 30-day stretch meets the reading's aims (forecasts/writing/reading_report.py)."""

import os
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from multiprocessing import get_context

from forecasts.writing.generation import facts_for
from forecasts.writing.generators.offline import OfflineComposer
from forecasts.writing.reading_report import aims_missed, reading_metrics, readings_compose

YEAR = 2025
WINDOW_DAYS = 30


def _window(start: date) -> dict:
    """Compose and measure 30 days from `start` for the twelve signs (runs in a worker process)."""
    composer = OfflineComposer()
    readings, seconds = readings_compose(start, WINDOW_DAYS, facts_for, composer=composer)
    metrics = reading_metrics(readings, seconds, composer.stripped)
    return {
        "start": start.isoformat(),
        "missed": aims_missed(metrics, timed=False),
        "violations": [v for r in readings for v in r.violations][:3],
        "readings": metrics["readings"],
        "headlines": {r.draft.headline for r in readings},
        "phrasings": {p for r in readings for p in r.draft.phrasings},
    }


def test_every_30_days_of_a_year_are_true_to_the_sky_and_meet_the_aims():
    starts = [date(YEAR, 1, 1) + timedelta(days=WINDOW_DAYS * n) for n in range(12)]
    workers = max(1, min(4, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
        results = list(pool.map(_window, starts))
    assert [r["violations"] for r in results if r["violations"]] == []
    assert {r["start"]: r["missed"] for r in results if r["missed"]} == {}
    assert sum(r["readings"] for r in results) == 12 * 12 * WINDOW_DAYS
    # The library is used widely, not a few favourites.
    assert len(set().union(*(r["phrasings"] for r in results))) > 1200
