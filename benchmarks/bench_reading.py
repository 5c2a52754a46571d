"""The reading's variety and truth over 30 days x 12 signs, written offline (issue 14's aims).

Runs what `manage.py reading_report --start <date> --days 30` runs, on two windows: one fixed
(comparable from run to run) and one starting today. Each figure is a share or a count over the
same 360 readings; the aims are in forecasts/writing/reading_report.py and docs/benchmarks.md.
"""

from datetime import UTC, date, datetime

FIXED_START = date(2026, 12, 1)
DAYS = 30


def _report(start: date) -> dict:
    from forecasts.writing.generation import facts_for
    from forecasts.writing.generators.offline import OfflineComposer
    from forecasts.writing.reading_report import aims_missed, reading_metrics, readings_compose

    composer = OfflineComposer()
    readings, seconds = readings_compose(start, DAYS, facts_for, composer=composer)
    metrics = reading_metrics(readings, seconds, composer.stripped)
    metrics.pop("topics", None)
    metrics["aims_missed"] = aims_missed(metrics)
    metrics["start"] = start.isoformat()
    return metrics


def run() -> dict:
    from benchmarks import support

    support.environment()  # Django's settings; the readings themselves touch no database
    figures = {}
    for label, start in (("fixed", FIXED_START), ("today", datetime.now(UTC).date())):
        for key, value in _report(start).items():
            figures[f"{label}_{key}"] = value
    return figures
