"""When a reader's next email is due: pure date and time-zone maths, no ORM.

Rules for daylight-saving changes (the same as Python's zoneinfo, PEP 495 fold=0):
- a delivery time that does not exist on a day (the clocks jump over it) is sent as if the
  clocks had not changed yet, i.e. shifted forward by the gap: 02:30 on a day that jumps from
  02:00 to 03:00 is sent at 03:30;
- a delivery time that happens twice (the clocks go back over it) is sent at its first
  occurrence, and only once: a local date gets at most one email.
"""

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DEFAULT_DELIVERY_TIME = time(6, 0)


@lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    """IANA zone names, without the legacy aliases people should not pick."""
    return frozenset(name for name in available_timezones() if "/" in name or name == "UTC") - {"Factory"}


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """A ZoneInfo by name; raises ValueError for unknown names."""
    if name not in known_time_zones():
        raise ValueError(f"{name!r} is not a known IANA time zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unreadable
        raise ValueError(f"{name!r} is not a known IANA time zone") from exc


def local_send_instant(local_date: date, delivery_time: time, tz: ZoneInfo) -> datetime:
    """The UTC instant `delivery_time` happens on `local_date` in `tz` (fold=0, see module doc)."""
    wall = datetime.combine(local_date, delivery_time.replace(tzinfo=None, fold=0), tzinfo=tz)
    return wall.astimezone(UTC)


def next_send_at(
    now: datetime,
    time_zone: str,
    delivery_time: time = DEFAULT_DELIVERY_TIME,
    last_local_date: date | None = None,
) -> datetime:
    """The first send instant after `now` on a local date later than `last_local_date`.

    `last_local_date` is the local date of the reader's last claimed delivery: a change of
    time or zone after today's email never schedules a second one for the same day.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = zone(time_zone)
    day = now.astimezone(tz).date()
    if last_local_date is not None:
        day = max(day, last_local_date + timedelta(days=1))
    while True:
        instant = local_send_instant(day, delivery_time, tz)
        if instant > now:
            return instant
        day += timedelta(days=1)


def local_date_of(instant: datetime, time_zone: str) -> date:
    """The reader's calendar date at `instant`."""
    return instant.astimezone(zone(time_zone)).date()
