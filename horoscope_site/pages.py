"""About, Privacy and Terms: fixed pages, with the contact address from settings (CONTACT_EMAIL)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

# Django's own session length, which the privacy page quotes.
SESSION_DAYS = settings.SESSION_COOKIE_AGE // 86400


@require_GET
def about(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/about.html")


@require_GET
def privacy(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/privacy.html", {"session_days": SESSION_DAYS})


@require_GET
def terms(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/terms.html")
