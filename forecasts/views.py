from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from forecasts.zodiac import SIGNS


def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what the service is, and the way to sign up."""
    return render(request, "forecasts/home.html", {"signs": SIGNS})
