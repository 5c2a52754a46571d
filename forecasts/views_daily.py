"""The web version of a daily email: one sign's forecast for one date, readable by anyone."""

from datetime import date

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.scheduling import known_time_zones
from forecasts.emails import fact_lines, local_time_label, ordered_sections, sky_wheel
from forecasts.models import Forecast
from forecasts.zodiac import SIGNS_BY_SLUG

READY = (Forecast.Status.DRAFT, Forecast.Status.APPROVED)


def daily(request: HttpRequest, sign: str, day: str) -> HttpResponse:
    """A ready forecast with every topic; sky event times in ?tz= (a known zone) or UTC."""
    if sign not in SIGNS_BY_SLUG:
        raise Http404("No such sign")
    try:
        the_date = date.fromisoformat(day)
    except ValueError:
        raise Http404("No such date") from None
    forecast = Forecast.objects.filter(sign=sign, date=the_date, status__in=READY).first()
    if forecast is None:
        raise Http404("This forecast is not written yet")
    time_zone = request.GET.get("tz", "UTC")
    if time_zone not in known_time_zones():
        time_zone = "UTC"
    facts = [
        fact.render(lambda instant, nested: local_time_label(instant, time_zone, the_date, nested))
        for fact in fact_lines(forecast.facts, the_date)
    ]
    wheel_svg, wheel_alt = sky_wheel(the_date)
    context = {
        "forecast": forecast,
        "sign": SIGNS_BY_SLUG[sign],
        "day": the_date,
        "sections": ordered_sections(forecast),
        "facts": facts,
        "time_zone": time_zone,
        "wheel_svg": wheel_svg,
        "wheel_alt": wheel_alt,
    }
    return render(request, "forecasts/daily.html", context)
