"""Template helpers for showing a reading (a Forecast, or the SharedReading pages keep in the
cache): its text in a reader's zone and its sky facts."""

from datetime import time

from django import template

from accounts.scheduling import zone
from forecasts.web.shared_reading import shared
from forecasts.writing.slots import fill_slots

register = template.Library()


@register.simple_tag(takes_context=True)
def forecast_text(context, forecast, time_zone: str = "UTC") -> str:
    """The reading's text as a reader in `time_zone` sees it: each time slot written in their
    zone ("at 14:10 this afternoon"); notes in topic order, only the context's `topics` when set."""
    return shared(forecast).text_html(time_zone, context.get("topics") or None)


@register.simple_tag
def forecast_facts(forecast, time_zone: str = "UTC", since=None) -> list[str]:
    """ "In the sky": from `since` (a reader's delivery time; else the start of the day) to the
    end of the forecast's date in `time_zone` (forecasts.sending.emails.facts.sky_lines)."""
    return shared(forecast).sky_lines(time_zone, since if isinstance(since, time) else time(0))


@register.filter
def story_in(forecast, time_zone: str = "UTC") -> str:
    """The main reading with its time slots written in `time_zone` (for short previews)."""
    return fill_slots(forecast.overview, zone(time_zone), forecast.date)
