"""Which calendar dates exist on Earth at an instant: pure, no database.

Civil time runs from UTC-12 (Baker Island) to UTC+14 (Kiritimati), so at any instant two or
three dates are "today" somewhere: from 10:00 to 12:00 UTC three of them. A reading is owed for
each of those dates, readings are never shown for a date that has begun nowhere, and a date
that has ended everywhere is the past.
"""

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

WESTMOST_OFFSET = timedelta(hours=-12)
EASTMOST_OFFSET = timedelta(hours=14)
# The zone whose date is the earliest on Earth: visitors we know nothing about see its date,
# so no page shows them a date that has not begun where they are (tz names invert the sign).
WESTMOST_ZONE = "Etc/GMT+12"


class DateState(StrEnum):
    PAST = "past"  # ended everywhere
    CURRENT = "current"  # today somewhere on Earth
    FUTURE = "future"  # begun nowhere yet


def earliest_date(now: datetime) -> date:
    """The date at UTC-12, the last place to leave a date."""
    return (now.astimezone(UTC) + WESTMOST_OFFSET).date()


def latest_date(now: datetime) -> date:
    """The date at UTC+14, the first place to reach a date."""
    return (now.astimezone(UTC) + EASTMOST_OFFSET).date()


def dates_on_earth(now: datetime) -> list[date]:
    """Every date that is today somewhere at `now`, oldest first (two or three of them)."""
    first, last = earliest_date(now), latest_date(now)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def date_state(day: date, now: datetime) -> DateState:
    if day < earliest_date(now):
        return DateState.PAST
    if day > latest_date(now):
        return DateState.FUTURE
    return DateState.CURRENT


def dates_to_prepare(now: datetime, days_ahead: int) -> list[date]:
    """The dates on Earth now, and the UTC dates up to `days_ahead` after today in UTC."""
    last = max(latest_date(now), now.astimezone(UTC).date() + timedelta(days=days_ahead))
    first = earliest_date(now)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def dates_on_earth_and_next(now: datetime) -> list[date]:
    """The dates on Earth now and the next one to begin: what a fresh site writes at once."""
    dates = dates_on_earth(now)
    return [*dates, dates[-1] + timedelta(days=1)]
