"""Public pages: the landing page, today's twelve readings, and each sign's page and archive.

"Today" is the viewer's date (forecasts/web/readings.py says whose zone that is). A reading
missing for a date that is today somewhere on Earth is written on demand; a past date without
one says so plainly; a date that has begun nowhere is never listed or linked.
"""

import logging
from datetime import date, timedelta

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts.scheduling import local_date_of
from forecasts.earth_dates import DateState, date_state
from forecasts.models import Forecast
from forecasts.reading_cache import KEY_PREFIX, MISSING, get_versioned, set_versioned
from forecasts.sky.wheel_png import WheelUnavailable, noon_wheel_png
from forecasts.web.readings import (
    missing_text,
    other_dates_on_earth,
    readings_for_page,
    text_zone,
    viewer_subscription,
    viewer_today,
    viewer_zone,
    visitor_zone,
)
from forecasts.web.shared_reading import reading_for_page, wheel_svg
from forecasts.web.visitor_pages import offer_to_visitors, visitor_page
from forecasts.zodiac import SIGN_SLUGS, SIGNS, SIGNS_BY_SLUG

logger = logging.getLogger(__name__)

ARCHIVE_PAGE_SIZE = 30
# The ephemeris covers 1900-2053; pages outside this range have nothing to show.
EARLIEST_DAY, LATEST_DAY = date(1901, 1, 1), date(2052, 12, 30)


def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what the service is, and the way to sign up."""
    return render(request, "forecasts/home.html", {"signs": SIGNS})


def glossary(request: HttpRequest) -> HttpResponse:
    """The words of "In the sky" explained: aspects, houses, orbs, stations, slots."""
    return render(request, "forecasts/glossary.html")


def _parse_day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Http404("No such date") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise Http404("No readings so far from today")
    return day


def _next_if_begun(day: date, now, viewer_today: date, known: bool) -> date | None:
    """The next date, for a "next" link, if it has begun: for the viewer when we know their
    zone, else somewhere on Earth."""
    following = day + timedelta(days=1)
    if known:
        return following if following <= viewer_today else None
    return None if date_state(following, now) is DateState.FUTURE else following


def horoscopes_today(request: HttpRequest) -> HttpResponse:
    """All twelve signs' readings for one date (?date=YYYY-MM-DD, default the viewer's today)."""
    now = timezone.now()
    today, known = viewer_today(request, now)
    day = today
    if request.GET.get("date"):
        try:
            day = date.fromisoformat(request.GET["date"])
        except ValueError:
            day = None
        if day is None or not EARLIEST_DAY <= day <= LATEST_DAY:
            error = "That is not a date between 1901 and 2052 (use YYYY-MM-DD)."
            return render(request, "forecasts/today.html", {"error": error, "day": today}, status=400)
    forecasts = readings_for_page(day, SIGN_SLUGS, now)
    cards = [{"sign": sign, "forecast": forecasts.get(sign.slug)} for sign in SIGNS]
    context = {
        "day": day,
        "is_today": day == today,
        "cards": cards,
        "missing_text": missing_text(day, now),
        "other_dates": other_dates_on_earth(today, known, now) if day == today else [],
        "previous_day": day - timedelta(days=1),
        "next_day": _next_if_begun(day, now, today, known),
        "wheel_svg": wheel_svg(day),
    }
    return render(request, "forecasts/today.html", context)


def _subscribe_link(request: HttpRequest, sign: str) -> str:
    """Where a sign page's call to subscribe leads: sign-up with the sign chosen for a visitor,
    the preferences for a reader of another sign, nowhere for a reader of this one."""
    if not request.user.is_authenticated:
        return reverse("account_signup") + "?" + urlencode({"sign": sign})
    subscription = viewer_subscription(request)
    if subscription is not None and subscription.sign == sign:
        return ""
    return reverse("portal:preferences")


def _sign_page_visitor_key(
    sign: str, today: date, zone_name: str, known: bool, other_dates: list[date], page_number: str | None
) -> str:
    # The zone sets the date, `known` whether times are written in it or in UTC.
    others = ",".join(day.isoformat() for day in other_dates)
    zone_part = f"{zone_name}:{text_zone(zone_name, known)}"
    return f"{KEY_PREFIX}:visitor-sign-page:{sign}:{today.isoformat()}:{zone_part}:{others}:{page_number or 1}"


def _sign_page_asked_by_visitor(request: HttpRequest, sign: str) -> tuple[str, str] | None:
    """The page a visitor's request asks for, worked out as `sign_page` does (forecasts/web/visitor_pages.py)."""
    page_number = request.GET.get("page")
    if sign not in SIGNS_BY_SLUG or not _is_short_number(page_number):
        return None
    now = timezone.now()
    zone_name, known = visitor_zone(request)
    today = local_date_of(now, zone_name)
    others = other_dates_on_earth(today, known, now)
    return sign, _sign_page_visitor_key(sign, today, zone_name, known, others, page_number)


@visitor_page(_sign_page_asked_by_visitor)
def sign_page(request: HttpRequest, sign: str) -> HttpResponse:
    """One sign: the reading of the viewer's today and the earlier ones by date."""
    info = SIGNS_BY_SLUG.get(sign)
    if info is None:
        raise Http404("No such sign")
    now = timezone.now()
    zone_name, known = viewer_zone(request)
    today = local_date_of(now, zone_name)
    page_number = request.GET.get("page")
    shared, kept = _sign_page_shared(info, today, text_zone(zone_name, known), page_number, now)
    context = {
        "sign": info,
        "day": today,
        "shared": shared,
        "other_dates": other_dates_on_earth(today, known, now),
        "subscribe_url": _subscribe_link(request, sign),
        "signed_in": request.user.is_authenticated,
    }
    response = render(request, "forecasts/sign.html", context)
    if kept:
        # Every visitor asking for this date, zone and page gets these bytes until the sign changes.
        key = _sign_page_visitor_key(sign, today, zone_name, known, context["other_dates"], page_number)
        offer_to_visitors(request, response, sign, key)
    return response


def _sign_page_shared(info, today: date, time_zone: str, page_number: str | None, now) -> tuple[dict[str, str], bool]:
    """The HTML of a sign page that every viewer with this date and zone shares: its reading
    (times in `time_zone`), and its wheel and archive; and whether it is kept. Kept in the cache
    (forecasts/reading_cache.py) while the sign's rows are unchanged, once the reading exists;
    the rest of the page is the viewer's own."""
    key = f"{KEY_PREFIX}:sign-page:{info.slug}:{today.isoformat()}:{time_zone}:{page_number or 1}"
    cached, version = get_versioned(info.slug, key) if _is_short_number(page_number) else (MISSING, 0)
    if cached is not MISSING:
        return cached, True
    forecast = reading_for_page(today, info.slug, now)
    # Only the dates before the viewer's today: none that has not begun for them.
    archive = Forecast.objects.ready().filter(sign=info.slug, date__lt=today).only("date", "headline", "sign")
    page = Paginator(archive.order_by("-date"), ARCHIVE_PAGE_SIZE).get_page(page_number)
    context = {
        "sign": info,
        "day": today,
        "time_zone": time_zone,
        "forecast": forecast,
        "missing_text": missing_text(today, now),
        "page": page,
        "wheel_svg": wheel_svg(today),
        "signs": SIGNS,
    }
    parts = {
        "reading": render_to_string("forecasts/_sign_reading.html", context),
        "archive": render_to_string("forecasts/_sign_archive.html", context),
    }
    # Kept only under the page's own number: ?page=9999 (shown as the last page) would fill the cache.
    kept = forecast is not None and str(page.number) == (page_number or "1")
    if kept:
        set_versioned(key, version, parts)
    return parts, kept


def _is_short_number(text: str | None) -> bool:
    return text is None or (text.isdigit() and len(text) <= 4)


def sign_day(request: HttpRequest, sign: str, day: str) -> HttpResponse:
    """One sign's reading for one date, with sky event times in ?tz= (a known zone; else UTC).

    This is also the web version of the daily email, whose link carries the reader's zone.
    """
    info = SIGNS_BY_SLUG.get(sign)
    if info is None:
        raise Http404("No such sign")
    the_day = _parse_day(day)
    now = timezone.now()
    zone_name, known = viewer_zone(request)
    today = local_date_of(now, zone_name)
    time_zone = text_zone(zone_name, known)
    context = {
        "time_zone": time_zone,
        "sign": info,
        "day": the_day,
        "forecast": reading_for_page(the_day, sign, now),
        "missing_text": missing_text(the_day, now),
        "previous_day": the_day - timedelta(days=1),
        "next_day": _next_if_begun(the_day, now, today, known),
        "wheel_svg": wheel_svg(the_day),
    }
    return render(request, "forecasts/sign_day.html", context)


def sky_wheel_png(request: HttpRequest, day: str) -> HttpResponse:
    """The wheel of a date's noon sky as a PNG, for emails (which cannot show SVG)."""
    try:
        png = noon_wheel_png(_parse_day(day))
    except WheelUnavailable as error:
        logger.error("%s", error)
        return HttpResponse("The sky wheel cannot be drawn on this server.", status=503, content_type="text/plain")
    if not png:
        raise Http404("No sky for that date")
    response = HttpResponse(png, content_type="image/png")
    # The sky of a date never changes, and the URL names the drawing's style: cache it for good.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
