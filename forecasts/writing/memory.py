"""What a sign has read lately: the memory that keeps its next reading from repeating it.

Read from the Forecast rows themselves (the database is the source of truth): the sign's
readings of the last MEMORY_DAYS dates before this one, and the other signs' readings of the
same date. Two queries per reading, whatever the window.
"""

from collections.abc import Iterable
from datetime import date, timedelta

from forecasts.models import Forecast
from forecasts.writing.generators import ReadingMemory
from forecasts.writing.sky_claims import sentences

MEMORY_DAYS = 30


Reading = tuple[date, str, str, str, list[str]]  # (date, sign, headline, overview, phrasing ids)


def memory_from(day: date, sign: str, readings: Iterable[Reading]) -> ReadingMemory:
    """The memory of `sign` for `day` from the readings of every sign in the window before it and
    of the other signs on `day` itself (any order). Pure: the report builds memory the same way."""
    recent: dict[str, int] = {}
    counts: dict[str, int] = {}
    own: list[Reading] = []
    today: set[str] = set()
    today_headlines: list[str] = []
    for reading in readings:
        when, reading_sign, headline, _, phrasings = reading
        for phrasing_id in phrasings or []:
            counts[phrasing_id] = counts.get(phrasing_id, 0) + 1
        if when == day and reading_sign != sign:
            today.update(phrasings or [])
            if headline:
                today_headlines.append(headline)
        elif reading_sign == sign and when < day:
            own.append(reading)
    headlines: list[str] = []
    openings: list[str] = []
    for when, _, headline, overview, phrasings in sorted(own, key=lambda reading: reading[0], reverse=True):
        for phrasing_id in phrasings or []:
            recent.setdefault(phrasing_id, (day - when).days)
        if headline:
            headlines.append(headline)
        first = sentences(overview or "")[:1]
        if first:
            openings.append(first[0].strip())
    return ReadingMemory(
        recent=recent,
        today=frozenset(today),
        headlines=tuple(headlines),
        openings=tuple(openings),
        today_headlines=tuple(today_headlines),
        counts=counts,
    )


def reading_memory(day: date, sign: str, days: int = MEMORY_DAYS) -> ReadingMemory:
    """The sign's memory for writing its reading of `day`, from the database (one query)."""
    readings = (
        Forecast.objects.ready()
        .filter(date__gte=day - timedelta(days=days), date__lte=day)
        .exclude(date=day, sign=sign)
        .values_list("date", "sign", "headline", "overview", "phrasings")
    )
    return memory_from(day, sign, readings)
