"""Hardening that is wiring, not features: error reports without secrets, admin behind 2FA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from django.views.defaults import page_not_found

from horoscope_site.secrets import mask_secret_values, secret_values


def mask_secrets(value: Any, secrets: set[str]) -> Any:
    """`value` with every known secret value inside any string replaced by stars."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask_secret_values(value, secrets)
    if isinstance(value, dict):
        return {key: mask_secrets(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(mask_secrets(item, secrets) for item in value)
    return value


class SecretsCleansingFilter(SafeExceptionReporterFilter):
    """Django's filter hides settings by name (SECRETS, *_KEY, ...); this also hides them by value.

    A secret copied into a differently named setting or environment variable (a
    DATABASE_URL with a password from the secret, say) is masked too.
    """

    def cleanse_setting(self, key, value):
        return mask_secrets(super().cleanse_setting(key, value), secret_values())


class SecretsMaskingReporter(ExceptionReporter):
    """Error pages and error mails with every known secret value masked.

    Local variables of any frame (a view that built a client from a key, say) and
    the exception message itself are covered, which the name-based filter cannot do.
    """

    def get_traceback_data(self):
        return mask_secrets(super().get_traceback_data(), secret_values())


def has_mfa_session(request: HttpRequest) -> bool:
    """Did this session's login include a second factor (TOTP or a security key)?"""
    from allauth.account.authentication import get_authentication_records

    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


def staff_only(view):
    """Mark a staff page outside the admin: it gets the admin's second-factor gate."""
    view.staff_only = True
    return view


# allauth views that add a first authenticator; staff need a set-up link for them (accounts/staff_mfa.py).
FIRST_FACTOR_VIEWS = {"mfa_activate_totp", "mfa_add_webauthn", "mfa_signup_webauthn"}


class AdminMFAMiddleware:
    """Staff pages (the admin, and any view marked `staff_only`) open only after a second factor.

    With ADMIN_REQUIRE_MFA, staff who signed in with a password only are asked for a code, or,
    without an authenticator yet, shown what to do (/staff/). Whatever that setting, staff add
    their first authenticator only in a session that redeemed a one-time set-up link: a stolen
    password must not be enough to enrol the thief's own phone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        match = request.resolver_match
        user = getattr(request, "user", None)
        if match is None or user is None or not user.is_authenticated or not user.is_staff:
            return None  # readers are never asked; the admin sends visitors to its login page itself
        from accounts import staff_mfa

        if match.url_name in FIRST_FACTOR_VIEWS:
            if staff_mfa.staff_has_second_factor(user) or staff_mfa.session_may_enrol(request):
                return None
            messages.info(request, "Staff set up two-factor sign-in with a one-time link; here is how to get one.")
            return HttpResponseRedirect(reverse("staff:home"))
        if not getattr(settings, "ADMIN_REQUIRE_MFA", False):
            return None
        staff_page = (match.app_name == "admin" and match.url_name not in {"login", "logout"}) or getattr(
            view_func, "staff_only", False
        )
        if not staff_page or has_mfa_session(request):
            return None
        query = urlencode({"next": request.get_full_path()})
        if not staff_mfa.staff_has_second_factor(user):
            return HttpResponseRedirect(f"{reverse('staff:home')}?{query}")
        messages.info(request, "Enter a code from your authenticator app to open the admin.")
        return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")


class UnconfiguredLoginProviderMiddleware:
    """A sign-in provider without an app (Cognito off, the embedded default) is a 404, not a 500.

    allauth mounts /accounts/amazon-cognito/... whatever the settings and raises
    SocialApp.DoesNotExist when no app is configured; settings can switch Cognito on at
    runtime (tests do), so this is decided per request, not by leaving the URLs out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from allauth.socialaccount.models import SocialApp

        if isinstance(exception, SocialApp.DoesNotExist):
            return page_not_found(request, Http404("This sign-in method is not set up on this site."))
        return None
