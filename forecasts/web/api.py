"""A small read-only JSON API, mounted at /api/v1/.

- `GET horoscope/today`: the signed-in reader's forecast for their local date, for a
  Cognito access token (`Authorization: Bearer ...`), as API Gateway with a Cognito
  authorizer would serve it.
- `GET signs/<sign>/today[?date=YYYY-MM-DD][&tz=Zone/Name]`: one sign's forecast, public; without
  `date`, for today in `tz` (UTC when not given).

A date that is today somewhere on Earth is written on demand when preparation has not written it
yet, as the pages do (forecasts/web/readings.py); a date that has not begun anywhere is never served.

Every answer, errors included, is JSON. No cookies are read, so no CSRF applies.
"""

from __future__ import annotations

import re
from datetime import date, time
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt

from accounts.cognito_tokens import SigningKeysUnavailable, TokenError, verify_access_token
from accounts.models import Subscription, User
from accounts.scheduling import known_time_zones, local_date_of, zone
from forecasts.earth_dates import DateState, date_state
from forecasts.models import Forecast
from forecasts.sending.emails.facts import sky_lines
from forecasts.web.readings import readings_for_page
from forecasts.writing.slots import fill_slots
from forecasts.zodiac import SIGNS_BY_SLUG

COGNITO_PROVIDER = "amazon_cognito"
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BEARER = re.compile(r"Bearer +([A-Za-z0-9_.~+/=-]+)", re.IGNORECASE)
PUBLIC_MAX_AGE_S = 300


def error(status: int, code: str, detail: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def api_view(*methods: str):
    """JSON-only view: other methods get a JSON 405 (with Allow), never an HTML page."""
    allowed = sorted({*methods, "HEAD"} if "GET" in methods else set(methods))

    def decorator(view):
        @csrf_exempt  # read-only, and authenticated by bearer token, never by cookie
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in allowed:
                return error(405, "method_not_allowed", f"Use {', '.join(allowed)}.", Allow=", ".join(allowed))
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def forecast_json(
    forecast: Forecast, topics: list[str] | None = None, time_zone: str = "UTC", since: time = time(0)
) -> dict:
    """The public shape of a forecast, its times written in `time_zone`; `topics` limits the
    sections to the reader's choice; `sky` lists what happens from `since` (the reader's delivery
    time) to the end of their day."""
    sign = SIGNS_BY_SLUG[forecast.sign]
    local = zone(time_zone)

    def local_text(text) -> str:
        return fill_slots(str(text or ""), local, forecast.date)

    sections = forecast.sections if isinstance(forecast.sections, dict) else {}
    if topics is not None:
        sections = {topic: text for topic, text in sections.items() if topic in topics}
    advice = forecast.advice if isinstance(forecast.advice, dict) else {}
    return {
        "date": forecast.date.isoformat(),
        "sign": {"slug": sign.slug, "name": sign.name, "glyph": sign.glyph},
        "time_zone": time_zone,
        "headline": forecast.headline,
        "overview": local_text(forecast.overview),
        "sections": {topic: local_text(text) for topic, text in sections.items()},
        "do": local_text(advice.get("do")),
        "dont": local_text(advice.get("dont")),
        "sky": sky_lines(forecast.facts, forecast.date, time_zone, since),
    }


def forecast_published(sign: str, day: date) -> Forecast | None:
    """The readable forecast of `sign` on `day`, written now if the date is today somewhere on
    Earth and nobody has; None for a date that has not begun anywhere, or a past one without."""
    if date_state(day, timezone.now()) is DateState.FUTURE:
        return None
    return readings_for_page(day, [sign]).get(sign)


def forecast_missing(what: str, day: date) -> JsonResponse:
    """Why there is no forecast: a 503 to retry while today's is being written, else a 404."""
    state = date_state(day, timezone.now())
    if state is DateState.CURRENT:
        detail = f"The forecast for {what} is being written; try again in a few seconds."
        return error(503, "temporarily_unavailable", detail, Retry_After="5")
    if state is DateState.FUTURE:
        return error(404, "not_found", f"No forecast for {what}: that date has not begun anywhere on Earth yet.")
    return error(404, "not_found", f"No forecast was written for {what}.")


def reader_for_claims(claims: dict) -> User | None:
    """The site user a verified access token stands for.

    Cognito users who signed in through allauth have a SocialAccount whose uid is
    their `sub`, and only `sub` names them: `username` is whatever the pool uses as
    user names, which may be another reader's sub. A token carrying a verified `email`
    claim (added by a pre-token Lambda) also matches a verified address of a local account.
    """
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount

    sub = claims.get("sub")
    account = (
        SocialAccount.objects.filter(provider=COGNITO_PROVIDER, uid=sub).select_related("user").first()
        if isinstance(sub, str) and sub
        else None
    )
    if account is not None:
        return account.user if account.user.is_active else None
    email = claims.get("email")
    if isinstance(email, str) and email and claims.get("email_verified") in (True, "true"):
        address = (
            EmailAddress.objects.filter(email__iexact=email, verified=True)
            .select_related("user")
            .order_by("pk")
            .first()
        )
        if address is not None and address.user.is_active:
            return address.user
    return None


def bearer_token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if not header:
        raise TokenError("send the access token as 'Authorization: Bearer <token>'")
    match = BEARER.fullmatch(header.strip())
    if match is None:
        raise TokenError("the Authorization header must be 'Bearer <token>'")
    return match.group(1)


def unauthorized(detail: str) -> JsonResponse:
    # RFC 6750: the description goes in a quoted string, so it must not contain quotes.
    safe = detail.replace('"', "'").replace("\\", "/")
    return error(
        401,
        "invalid_token",
        detail,
        WWW_Authenticate=f'Bearer error="invalid_token", error_description="{safe}"',
    )


def never_store(response: JsonResponse) -> JsonResponse:
    response["Cache-Control"] = "no-store"
    patch_vary_headers(response, ["Authorization"])
    return response


@api_view("GET")
def my_horoscope_today(request: HttpRequest) -> JsonResponse:
    """The token holder's forecast for today in their own time zone."""
    try:
        claims = verify_access_token(bearer_token(request))
    except TokenError as exc:
        return never_store(unauthorized(str(exc)))
    except SigningKeysUnavailable as exc:
        return never_store(error(503, "temporarily_unavailable", f"{exc}; try again shortly.", Retry_After="30"))
    user = reader_for_claims(claims)
    if user is None:
        return never_store(error(404, "not_found", "No reader account is linked to this Cognito user."))
    subscription = Subscription.objects.filter(user=user).only("sign", "time_zone", "delivery_time", "topics").first()
    if subscription is None:
        return never_store(error(404, "not_found", "Choose your sign first: there is no subscription yet."))
    time_zone = subscription.time_zone
    try:
        local_date = local_date_of(timezone.now(), time_zone)
    except ValueError:  # a zone that has left the tz database since it was saved
        local_date, time_zone = timezone.now().date(), "UTC"
    forecast = forecast_published(subscription.sign, local_date)
    if forecast is None:
        return never_store(forecast_missing(f"your sign today ({local_date.isoformat()})", local_date))
    topics = subscription.topics if isinstance(subscription.topics, list) else None
    return never_store(JsonResponse(forecast_json(forecast, topics, time_zone, subscription.delivery_time)))


@api_view("GET")
def sign_today(request: HttpRequest, sign: str) -> JsonResponse:
    """One sign's forecast for `?date=YYYY-MM-DD`, else for today in `?tz=`; times in `?tz=` (default UTC)."""
    if sign not in SIGNS_BY_SLUG:
        return error(404, "not_found", "Unknown sign: use one of " + ", ".join(SIGNS_BY_SLUG) + ".")
    time_zone = request.GET.get("tz", "UTC")
    if time_zone not in known_time_zones():
        return error(400, "invalid_request", "tz must be an IANA time zone name, e.g. Europe/Paris.")
    raw_date = request.GET.get("date")
    if raw_date is None:
        day = local_date_of(timezone.now(), time_zone)
    else:
        try:
            if not ISO_DATE.fullmatch(raw_date):
                raise ValueError
            day = date.fromisoformat(raw_date)
        except ValueError:
            return error(400, "invalid_request", "date must be a calendar date written YYYY-MM-DD.")
    forecast = forecast_published(sign, day)
    if forecast is None:
        return forecast_missing(f"{SIGNS_BY_SLUG[sign].name} on {day.isoformat()}", day)
    response = JsonResponse(forecast_json(forecast, time_zone=time_zone))
    response["Cache-Control"] = f"public, max-age={PUBLIC_MAX_AGE_S}"
    return response


@api_view("GET")
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Anything else under /api/v1/."""
    return error(404, "not_found", "No such API endpoint.")
