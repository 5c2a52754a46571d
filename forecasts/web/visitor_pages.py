"""Whole pages that every visitor asking for the same thing gets, served before the session, CSRF
and login middleware run: most of a page's cost is that frame, not the page.

A view opts in with `@visitor_page(key_for)`: `key_for(request, **url_kwargs)` names the page a
visitor's request asks for as (sign, key), or None. A visitor is a GET without a session or
messages cookie, to an allowed host. The view says which page it built, from the date and zone
it computed itself (`offer_to_visitors`); only such a response, a 200 that sets no cookie, is
kept. It is served while the sign's version in the cache (forecasts/reading_cache.py)
is still the one read before it was built, so an admin's edit shows on the very next request,
as for the parts of pages every viewer shares.

Kept in this process's memory only, never in Redis: a page names its static files, which a
deploy renames, and a miss costs one page built from the shared parts already in the cache.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from forecasts.reading_cache import MISSING, get_versioned, hold


def offer_to_visitors(request: HttpRequest, response: HttpResponse, sign: str, key: str) -> None:
    """Say that `response` is the page `key` of `sign` that every visitor gets, unless it is not:
    the viewer signed in, or the page holds a CSRF token (asked for while rendering; Django then
    also sets the cookie, which keeps the page out as well)."""
    if not request.user.is_authenticated and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        response.visitor_page = (sign, key)


def visitor_page(key_for):
    """Mark a view whose response a visitor may be served from memory (see the module). Only its
    body and headers are replayed: attributes the outer middleware reads (django-csp's decorators)
    are not, so a marked view must not use them."""

    def mark(view):
        view.visitor_page_key_for = key_for
        return view

    return mark


@dataclass(frozen=True)
class _Page:
    content: bytes
    headers: tuple[tuple[str, str], ...]

    def response(self) -> HttpResponse:
        return HttpResponse(self.content, headers=dict(self.headers))


class VisitorPageCacheMiddleware:
    """After the security headers and static files, before sessions (settings.MIDDLEWARE)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        asked = self._asked(request)
        if asked is None:
            return self.get_response(request)
        sign, key = asked
        page, version = get_versioned(sign, key, shared=False)  # the version read before the view reads rows
        if page is not MISSING:
            return page.response()
        response = self.get_response(request)
        built_sign, built_key = getattr(response, "visitor_page", (None, None))
        if built_sign == sign and response.status_code == 200 and not response.streaming and not response.cookies:
            hold(built_key, version, _Page(response.content, tuple(response.items())))
        return response

    @staticmethod
    def _asked(request: HttpRequest) -> tuple[str, str] | None:
        if request.method != "GET":
            return None
        if settings.SESSION_COOKIE_NAME in request.COOKIES or CookieStorage.cookie_name in request.COOKIES:
            return None  # signed in, or a message waits for them: their own page
        request.get_host()  # a Host not in ALLOWED_HOSTS is a 400 here too, as CommonMiddleware makes it
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        key_for = getattr(match.func, "visitor_page_key_for", None)
        return key_for(request, *match.args, **match.kwargs) if key_for else None
