"""Measure how varied and how true the offline readings are over N days x 12 signs.

manage.py reading_report --start 2026-12-01 --days 30 [--json]

Writes nothing to the database: the readings are composed in memory, each with the memory the
product gives it (forecasts/writing/reading_report.py). Over 30 days or more, exits 1 when an
aim is missed.
"""

import json
from datetime import date, timedelta

from forecasts.management.commands._cli import OneLineCommand, usage_error
from forecasts.sky import SUPPORTED_END, SUPPORTED_START
from forecasts.writing.generation import facts_for
from forecasts.writing.generators.offline import OfflineComposer
from forecasts.writing.reading_report import AIMS, aims_missed, reading_metrics, readings_compose

MAX_DAYS = 366
AIM_DAYS = 30


class Command(OneLineCommand):
    help = "Compose N days of offline readings for the 12 signs and print their variety and truth figures."

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
        parser.add_argument("--days", type=int, default=30, help=f"how many dates (1-{MAX_DAYS}, default 30)")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")

    def handle(self, *args, **options):
        try:
            start = date.fromisoformat(options["start"])
        except ValueError:
            raise usage_error(f"cannot read --start {options['start']!r} as a date (use YYYY-MM-DD)") from None
        days = options["days"]
        if not 1 <= days <= MAX_DAYS:
            raise usage_error(f"--days must be between 1 and {MAX_DAYS}, not {days}")
        # Each date's forecast window reaches a day either side of it.
        if start - timedelta(days=1) < SUPPORTED_START.date() or start + timedelta(days=days) >= SUPPORTED_END.date():
            raise usage_error("the dates must lie within the ephemeris range 1900-01-01..2053-01-01")
        composer = OfflineComposer()
        readings, seconds = readings_compose(start, days, facts_for, composer=composer)
        metrics = reading_metrics(readings, seconds, composer.stripped)
        # The aims are set for 30 days or more: on fewer, one sentence seen twice is already 2%.
        missed = aims_missed(metrics) if days >= AIM_DAYS else []
        metrics["aims_missed"] = missed
        if options["json"]:
            self.stdout.write(json.dumps(metrics, indent=2))
        else:
            self.stdout.write(f"{days} days x {metrics['signs']} signs from {start}: {metrics['readings']} readings")
            for key, value in metrics.items():
                if key in ("aims_missed", "topics"):
                    continue
                aim = AIMS.get(key)
                self.stdout.write(f"  {key:<34} {value}" + (f"   (aim {aim})" if aim is not None else ""))
            if days < AIM_DAYS:
                self.stdout.write(f"(the aims are set for {AIM_DAYS} days or more: not judged on {days})")
            elif not missed:
                self.stdout.write("all aims met")
            else:
                self.stdout.write("aims missed:\n  " + "\n  ".join(missed))
        if missed:
            raise SystemExit(1)
