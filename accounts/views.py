"""The reader's portal (/portal/, login required): dashboard, preferences, pause and resume,
unsubscribe and resubscribe, data export and account deletion."""

import json
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import DeleteAccountForm, PreferencesForm
from accounts.models import Subscription
from accounts.signals import LOGIN_AT_SESSION_KEY
from forecasts.web.shared_reading import reading_for_page, wheel_svg
from forecasts.zodiac import SIGNS_BY_SLUG

# How recent a login must be for an account without a password to be deleted.
FRESH_LOGIN_SECONDS = 5 * 60


def _subscription_or_redirect(request: HttpRequest) -> Subscription | HttpResponse:
    subscription = selectors.subscription_for_user(request.user)
    if subscription is None:
        messages.info(request, "Tell us your sign and your morning, and your daily horoscope starts.")
        return redirect("portal:preferences")
    return subscription


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Today's horoscope for the reader, or their sign and next delivery until one is written."""
    subscription = _subscription_or_redirect(request)
    if isinstance(subscription, HttpResponse):
        return subscription
    local_date = selectors.reader_local_date(subscription)
    # The reader's date is today somewhere, so a reading preparation has not written yet is written now.
    # What every reader of the sign shares comes from the cache; their zone, topics and hour are
    # applied here (templates/accounts/_forecast.html).
    forecast = reading_for_page(local_date, subscription.sign)
    context = {
        "subscription": subscription,
        "sign": SIGNS_BY_SLUG[subscription.sign],
        "local_date": local_date,
        "forecast": forecast,
        "wheel_svg": wheel_svg(local_date) if forecast else "",
    }
    return render(request, "accounts/dashboard.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """Create or change the subscription's preferences."""
    subscription = selectors.subscription_for_user(request.user)
    new = subscription is None
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            if new:
                try:
                    with transaction.atomic():
                        services.subscription_create(user=request.user, **form.preferences())
                except IntegrityError:  # a double submit created it a moment ago
                    subscription = selectors.subscription_for_user(request.user, reload=True)
                    services.subscription_update_preferences(subscription, **form.preferences())
                messages.success(request, "You are subscribed. Your first horoscope is on its way.")
            else:
                services.subscription_update_preferences(subscription, **form.preferences())
                messages.success(request, "Your preferences are saved.")
            return redirect("portal:dashboard")
    else:
        form = PreferencesForm(initial=PreferencesForm.initial_for(subscription), suggest_time_zone=new)
    return render(request, "accounts/preferences.html", {"form": form, "subscription": subscription, "new": new})


def _status_change(request: HttpRequest, change, success) -> HttpResponse:
    """Apply a service to the reader's subscription and say how it went on the dashboard.

    `success` is the message, or a function of the changed subscription giving it.
    """
    subscription = _subscription_or_redirect(request)
    if isinstance(subscription, HttpResponse):
        return subscription
    try:
        change(subscription)
    except services.SubscriptionStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success(subscription) if callable(success) else success)
    return redirect("portal:dashboard")


@login_required
@require_POST
def pause(request: HttpRequest) -> HttpResponse:
    return _status_change(request, services.subscription_pause, "Paused. No emails until you resume.")


@login_required
@require_POST
def resume(request: HttpRequest) -> HttpResponse:
    return _status_change(request, services.subscription_resume, "Welcome back: your daily horoscope is on again.")


@login_required
@require_POST
def unsubscribe(request: HttpRequest) -> HttpResponse:
    return _status_change(
        request,
        lambda subscription: services.subscription_unsubscribe(subscription, reason="unsubscribed in the portal"),
        "You are unsubscribed. We will not email you again unless you resubscribe.",
    )


@login_required
@require_POST
def resubscribe(request: HttpRequest) -> HttpResponse:
    def said(subscription: Subscription) -> str:
        if subscription.status == Subscription.Status.ACTIVE:
            return "You are subscribed again."
        return f"We sent a confirmation link to {request.user.email}. Open it to resubscribe."

    return _status_change(request, services.subscription_resubscribe, said)


@login_required
@require_POST
def resend_confirmation(request: HttpRequest) -> HttpResponse:
    return _status_change(
        request,
        services.subscription_send_confirmation,
        f"We sent the confirmation link to {request.user.email} again.",
    )


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    """Your data: download it, or delete the account."""
    return render(request, "accounts/account.html", {"subscription": selectors.subscription_for_user(request.user)})


@login_required
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    """Everything stored about the reader, as a JSON download."""
    data = services.user_export_data(request.user)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="daily-horoscope-data-{timezone.localdate()}.json"'
    response["Cache-Control"] = "no-store"
    return response


def login_is_fresh(request: HttpRequest) -> bool:
    """True when this session logged in within FRESH_LOGIN_SECONDS (a Cognito login counts)."""
    logged_in_at = request.session.get(LOGIN_AT_SESSION_KEY)
    return isinstance(logged_in_at, (int, float)) and 0 <= time.time() - logged_in_at < FRESH_LOGIN_SECONDS


@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest) -> HttpResponse:
    """Delete the account, after the password (or, without one, a fresh login)."""
    user = request.user
    needs_fresh_login = not user.has_usable_password() and not login_is_fresh(request)
    form = DeleteAccountForm(request.POST if request.method == "POST" else None, user=user)
    if request.method == "POST" and not needs_fresh_login and form.is_valid():
        services.user_delete(user)
        logout(request)
        messages.success(request, "Your account and everything we stored about you are deleted. Goodbye.")
        return redirect("forecasts:home")
    context = {
        "form": form,
        "needs_fresh_login": needs_fresh_login,
        "fresh_login_minutes": FRESH_LOGIN_SECONDS // 60,
        "cognito_enabled": settings.COGNITO_ENABLED,
    }
    return render(request, "accounts/delete.html", context)
