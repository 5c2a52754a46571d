"""Write the day's twelve forecasts (idempotent: what exists or is being written is left alone).

manage.py forecasts_prepare [--date YYYY-MM-DD] [--days N]

Without --date it prepares today's and tomorrow's UTC dates: tomorrow's forecast is read from
10:00 UTC today in UTC+14, and today's may still be missing on a fresh site.
"""

from datetime import date

from django.utils import timezone

from forecasts.management.commands._cli import OneLineCommand, usage_error
from forecasts.writing.generation import forecasts_prepare_days


class Command(OneLineCommand):
    help = "Write the forecasts of a date for all twelve signs (default: today and tomorrow, UTC)."

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="date_text", help="first date, YYYY-MM-DD (default: today in UTC)")
        parser.add_argument("--days", type=int, help="how many consecutive dates (default: 2 without --date, else 1)")

    def handle(self, *args, date_text: str | None, days: int | None, **options):
        first = self._date(date_text) if date_text else timezone.now().date()
        days = days if days is not None else (1 if date_text else 2)
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
