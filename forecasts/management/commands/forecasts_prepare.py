"""Write the day's twelve forecasts (idempotent: what exists or is being written is left alone).

manage.py forecasts_prepare [--date YYYY-MM-DD] [--days N]

Without --date it prepares every date that is today somewhere on Earth (UTC-12 to UTC+14: two
or three dates) and the next date to begin, so no reader anywhere finds their reading missing.
"""

from datetime import date

from django.utils import timezone

from forecasts.earth_dates import dates_on_earth_and_next
from forecasts.management.commands._cli import OneLineCommand, usage_error
from forecasts.writing.generation import forecasts_prepare_days


class Command(OneLineCommand):
    help = "Write the forecasts of a date for all twelve signs (default: every date on Earth now and the next)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--date", dest="date_text", help="first date, YYYY-MM-DD (default: the earliest date on Earth)"
        )
        parser.add_argument("--days", type=int, help="how many consecutive dates (default: 1 with --date)")

    def handle(self, *args, date_text: str | None, days: int | None, **options):
        owed = dates_on_earth_and_next(timezone.now())
        first = self._date(date_text) if date_text else owed[0]
        days = days if days is not None else (1 if date_text else len(owed))
        if not 1 <= days <= 31:
            raise usage_error("--days must be between 1 and 31")
        for result in forecasts_prepare_days(first, days):
            line = (
                f"{result.day}: {len(result.generated)} written, {len(result.skipped)} already done or in progress, "
                f"{len(result.failed)} failed"
            )
            self.stdout.write(line + (f" ({', '.join(result.failed)})" if result.failed else ""))

    @staticmethod
    def _date(text: str) -> date:
        try:
            value = date.fromisoformat(text.strip())
        except ValueError:
            raise usage_error(f"--date must be YYYY-MM-DD, not {text!r}") from None
        if not date(1901, 1, 1) <= value <= date(2052, 12, 30):
            raise usage_error("--date must be between 1901 and 2052 (the ephemeris' range)")
        return value
