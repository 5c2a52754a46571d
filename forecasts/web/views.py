"""Public pages: the landing page, today's twelve readings, and each sign's page and archive.

Pages only read forecasts; they never write one. A reading that is not ready yet shows as
"being prepared" (forecasts_prepare writes them ahead of time).
"""

from datetime import date, timedelta

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.scheduling import known_time_zones
from forecasts.models import Forecast
from forecasts.sky import noon_wheel
from forecasts.zodiac import SIGNS, SIGNS_BY_SLUG

ARCHIVE_PAGE_SIZE = 30
# The ephemeris covers 1900-2053; pages outside this range have nothing to show.
EARLIEST_DAY, LATEST_DAY = date(1901, 1, 1), date(2052, 12, 30)


def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what the service is, and the way to sign up."""
    return render(request, "forecasts/home.html", {"signs": SIGNS})


def glossary(request: HttpRequest) -> HttpResponse:
    """The words of "In the sky" explained: aspects, houses, orbs, stations, slots."""
    return render(request, "forecasts/glossary.html")


def _ready_forecasts(day: date) -> dict[str, Forecast]:
    return {f.sign: f for f in Forecast.objects.ready().filter(date=day).order_by()}


def _parse_day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Http404("No such date") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise Http404("No readings so far from today")
    return day


def horoscopes_today(request: HttpRequest) -> HttpResponse:
    """All twelve signs' readings for one date (?date=YYYY-MM-DD, default today in UTC)."""
    today = timezone.now().date()
    day = today
    if request.GET.get("date"):
        try:
            day = date.fromisoformat(request.GET["date"])
        except ValueError:
            day = None
        if day is None or not EARLIEST_DAY <= day <= LATEST_DAY:
            error = "That is not a date between 1901 and 2052 (use YYYY-MM-DD)."
            return render(request, "forecasts/today.html", {"error": error, "day": today}, status=400)
    forecasts = _ready_forecasts(day)
    cards = [{"sign": sign, "forecast": forecasts.get(sign.slug)} for sign in SIGNS]
    context = {
        "day": day,
        "is_today": day == today,
        "cards": cards,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1) if day < today + timedelta(days=1) else None,
        "wheel_svg": noon_wheel(day)[0],
    }
    return render(request, "forecasts/today.html", context)


def sign_page(request: HttpRequest, sign: str) -> HttpResponse:
    """One sign: today's reading and its archive by date."""
    info = SIGNS_BY_SLUG.get(sign)
    if info is None:
        raise Http404("No such sign")
    today = timezone.now().date()
    archive = (
        Forecast.objects.ready().filter(sign=sign, date__lte=today + timedelta(days=1)).only("date", "headline", "sign")
    )
    page = Paginator(archive.order_by("-date"), ARCHIVE_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "sign": info,
        "day": today,
        "forecast": Forecast.objects.ready().filter(sign=sign, date=today).first(),
        "page": page,
        "wheel_svg": noon_wheel(today)[0],
        "signs": SIGNS,
    }
    return render(request, "forecasts/sign.html", context)


def sign_day(request: HttpRequest, sign: str, day: str) -> HttpResponse:
    """One sign's reading for one date, with sky event times in ?tz= (a known zone; else UTC).

    This is also the web version of the daily email, whose link carries the reader's zone.
    """
    info = SIGNS_BY_SLUG.get(sign)
    if info is None:
        raise Http404("No such sign")
    the_day = _parse_day(day)
    time_zone = request.GET.get("tz", "UTC")
    if time_zone not in known_time_zones():
        time_zone = "UTC"
    context = {
        "time_zone": time_zone,
        "sign": info,
        "day": the_day,
        "forecast": Forecast.objects.ready().filter(sign=sign, date=the_day).first(),
        "is_future": the_day > timezone.now().date() + timedelta(days=1),
        "is_past": the_day < timezone.now().date() - timedelta(days=1),
        "previous_day": the_day - timedelta(days=1),
        "next_day": the_day + timedelta(days=1),
        "wheel_svg": noon_wheel(the_day)[0],
    }
    return render(request, "forecasts/sign_day.html", context)
