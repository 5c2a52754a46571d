"""What a page shows for a date: the viewer's own date, and readings written on demand.

A date that is today somewhere on Earth is owed its readings: if preparation has not written
one yet (a fresh site, a failed run), the page writes it with the offline composer, which
takes a fraction of a second. The claim in forecasts/writing/generation.py makes two requests
(or a request and a worker) write it once: the second waits for the first. A past date is never
written by a page (a crawler walking back through the archive would write thousands), nor a
date that has begun nowhere.
"""

import time
from collections.abc import Iterable
from datetime import date, datetime

from django.http import HttpRequest
from django.utils import timezone

from accounts.scheduling import known_time_zones, local_date_of
from forecasts.earth_dates import WESTMOST_ZONE, DateState, date_state, dates_on_earth
from forecasts.models import Forecast
from forecasts.writing.generation import forecast_get_or_generate
from forecasts.writing.generators.offline import OfflineComposer

# How long one page waits, in all, for readings another request or worker is writing.
ON_DEMAND_WAIT_SECONDS = 5.0
ON_DEMAND_NOTE = "written on demand: a page asked for it before preparation had written it"

# What a page says where a reading is missing, by the date's state.
MISSING_TEXT = {
    DateState.PAST: "No reading was written for this date.",
    DateState.CURRENT: "This reading is being written right now. Reload the page in a moment.",
    DateState.FUTURE: "This date has not begun anywhere on Earth yet; its reading is written before it does.",
}


def viewer_zone(request: HttpRequest) -> tuple[str, bool]:
    """(zone, known): ?tz= when it names a zone, else the signed-in reader's, else UTC-12."""
    zone_name, known = visitor_zone(request)
    subscription = None if known else viewer_subscription(request)
    if subscription is not None:
        return subscription.time_zone, True
    return zone_name, known


def visitor_zone(request: HttpRequest) -> tuple[str, bool]:
    """(zone, known) for a viewer who has not signed in: ?tz= when it names a zone, else UTC-12.

    For a visitor we know nothing about, the date is the one at UTC-12, the earliest on Earth:
    it has begun wherever they are, so no page offers them a date that has not.
    """
    asked = request.GET.get("tz", "")
    if asked in known_time_zones():
        return asked, True
    return WESTMOST_ZONE, False


def viewer_subscription(request: HttpRequest):
    """The signed-in viewer's subscription (None for a visitor or a user without one), read once a
    request: a page asks for it more than once (its zone, its call to subscribe)."""
    if not request.user.is_authenticated:
        return None
    if not hasattr(request, "_viewer_subscription"):
        from accounts.selectors import subscription_for_user

        request._viewer_subscription = subscription_for_user(request.user)
    return request._viewer_subscription


def viewer_today(request: HttpRequest, now: datetime | None = None) -> tuple[date, bool]:
    zone_name, known = viewer_zone(request)
    return local_date_of(now or timezone.now(), zone_name), known


def text_zone(zone_name: str, known: bool) -> str:
    """The zone a page writes a reading's times in: the viewer's when known, else UTC (named)."""
    return zone_name if known else "UTC"


def other_dates_on_earth(today: date, known: bool, now: datetime | None = None) -> list[date]:
    """The other dates that are today somewhere: for a viewer whose zone we know, only those
    that have begun for them (the one before theirs, where it is still yesterday)."""
    return [day for day in dates_on_earth(now or timezone.now()) if day != today and (day < today or not known)]


def readings_for_page(day: date, signs: Iterable[str], now: datetime | None = None) -> dict[str, Forecast]:
    """The ready readings of `day` for `signs`, those missing written now when the date is today
    somewhere on Earth. A sign still missing (someone else is writing it) is left out."""
    signs = list(signs)
    found = {f.sign: f for f in Forecast.objects.ready().filter(date=day, sign__in=signs)}
    if date_state(day, now or timezone.now()) is not DateState.CURRENT:
        return found
    deadline = time.monotonic() + ON_DEMAND_WAIT_SECONDS
    composer = None
    for sign in signs:
        if sign in found:
            continue
        composer = composer or OfflineComposer()
        wait = max(deadline - time.monotonic(), 0.0)
        forecast = forecast_get_or_generate(day, sign, wait=wait, generator=composer, note=ON_DEMAND_NOTE)
        if forecast is not None:
            found[sign] = forecast
    return found


def missing_text(day: date, now: datetime | None = None) -> str:
    return MISSING_TEXT[date_state(day, now or timezone.now())]
