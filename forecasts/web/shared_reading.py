"""A sign's reading of a date as every viewer shares it, and what one viewer's page makes of it.

A `SharedReading` is built once per version of the Forecast row and kept in the Django cache
(forecasts/reading_cache.py says when it is rebuilt): the text with its time slots still in it,
the notes in topic order, the sky facts ranked with their instants kept apart. Each request then
writes it for its viewer, cheaply: the slots and clock times in their zone, only their topics,
"In the sky" from their delivery time. The sky wheel of a date never changes: it is kept in the
cache and in each process.
"""

import functools
import logging
from dataclasses import dataclass
from datetime import date, datetime, time

from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from accounts.scheduling import zone
from forecasts.models import Forecast
from forecasts.reading_cache import KEY_PREFIX, MISSING, get_versioned, set_versioned
from forecasts.sending.emails.facts import FactLine, local_time_label, ranked_fact_lines, reader_window, visible_lines
from forecasts.sky import NOON_WHEEL_SIZE, noon_wheel
from forecasts.sky.wheel_png import WHEEL_STYLE
from forecasts.web.readings import readings_for_page
from forecasts.writing.slots import fill_slots

logger = logging.getLogger(__name__)

TEXT_TEMPLATE = "forecasts/_forecast_text.html"

# The sky of a date never changes: its wheel is kept for days, for the dates this near today.
WHEEL_CACHE_SECONDS = 3 * 24 * 3600
SHARED_WHEEL_DAYS = 7


@dataclass(frozen=True)
class SharedReading:
    """What a Forecast row shows every viewer, before their zone, topics and hour are applied.

    The text is HTML rendered once (templates/forecasts/_forecast_text.html) with its time slots
    still in it: escaping and paragraphs never touch a slot ([[at:2025-03-09T14:32Z]] has no
    character HTML escapes), and a filled slot ("at 14:32 this afternoon") has none either.
    """

    date: date
    sign: str
    headline: str
    overview: str
    story_html: str
    notes_html: tuple[tuple[str, str], ...]  # (topic, HTML): the non-empty notes in topic order
    advice_html: str
    ranked_facts: tuple[tuple[dict, FactLine], ...]

    @classmethod
    def from_forecast(cls, forecast: Forecast) -> "SharedReading":
        advice = forecast.advice if isinstance(forecast.advice, dict) else {}
        do, dont = str(advice.get("do") or ""), str(advice.get("dont") or "")
        return cls(
            date=forecast.date,
            sign=forecast.sign,
            headline=forecast.headline,
            overview=forecast.overview,
            story_html=render_to_string(TEXT_TEMPLATE, {"part": "story", "story": forecast.overview}),
            notes_html=tuple(
                (note["topic"], render_to_string(TEXT_TEMPLATE, {"part": "note", "note": note}))
                for note in forecast.sections_in_order()
            ),
            advice_html=render_to_string(TEXT_TEMPLATE, {"part": "advice", "do": do, "dont": dont})
            if do or dont
            else "",
            ranked_facts=tuple(ranked_fact_lines(forecast.facts)),
        )

    def text_html(self, time_zone: str = "UTC", topics=None) -> str:
        """The text as a reader in `time_zone` reads it: each time slot written in their zone
        ("at 14:10 this afternoon"); only the notes of `topics` when given (all when empty)."""
        wanted = set(topics) if topics else None
        notes = [html for topic, html in self.notes_html if wanted is None or topic in wanted]
        text = "".join([self.story_html, *notes, self.advice_html])
        return mark_safe(fill_slots(text, zone(time_zone), self.date))  # noqa: S308 - our own HTML, see above

    def sky_lines(self, time_zone: str = "UTC", since: time = time(0)) -> list[str]:
        """ "In the sky" from `since` on the reading's date to its end in `time_zone`: the lines
        forecasts.sending.emails.facts.sky_lines writes, from facts ranked once."""
        start, end = reader_window(self.date, time_zone, since)
        ranked = list(self.ranked_facts)
        return [
            ranked[index][1].render(lambda instant, nested: local_time_label(instant, time_zone, self.date, nested))
            for index in visible_lines(ranked, start, end)
        ]


def shared(forecast: Forecast | SharedReading) -> SharedReading:
    return forecast if isinstance(forecast, SharedReading) else SharedReading.from_forecast(forecast)


def reading_key(sign: str, day: date) -> str:
    return f"{KEY_PREFIX}:reading:{sign}:{day.isoformat()}"


def reading_for_page(day: date, sign: str, now: datetime | None = None) -> SharedReading | None:
    """The sign's ready reading of `day`, from the cache while its rows are unchanged; else as
    readings_for_page finds it (written on demand for a date that is today somewhere). A missing
    reading is never kept: the next request looks (and writes) again."""
    key = reading_key(sign, day)
    cached, version = get_versioned(sign, key)
    if cached is not MISSING:
        return cached
    forecast = readings_for_page(day, [sign], now).get(sign)
    if forecast is None:
        return None
    reading = SharedReading.from_forecast(forecast)
    set_versioned(key, version, reading)
    return reading


def wheel_svg(day: date) -> str:
    """The SVG wheel of the sky at noon UTC on `day` ('' outside the ephemeris). The wheels of
    the days around today, which every page shows, are drawn once for all processes; another
    date's (an old archive page) only once per process, so a crawler cannot fill the cache."""
    if abs((day - timezone.now().date()).days) > SHARED_WHEEL_DAYS:
        return noon_wheel(day)[0]
    return _shared_wheel_svg(day)


@functools.lru_cache(maxsize=2 * SHARED_WHEEL_DAYS + 2)
def _shared_wheel_svg(day: date) -> str:
    # The key names the drawing's style, as the PNG's URL does.
    key = f"{KEY_PREFIX}:wheel:{WHEEL_STYLE}:{NOON_WHEEL_SIZE}:{day.isoformat()}"
    try:
        svg = cache.get(key)
        if svg is None:
            svg = noon_wheel(day)[0]
            cache.set(key, svg, timeout=WHEEL_CACHE_SECONDS)
    except Exception:
        logger.warning("The page cache is unreachable: the wheel of %s drawn here", day, exc_info=True)
        svg = noon_wheel(day)[0]
    return svg
