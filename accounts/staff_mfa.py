"""Staff set up their second factor through a one-time link, never with their password alone.

Whoever holds a staff password could otherwise add their own authenticator and open the admin.
The link is made on the server (`createsuperuser`, `manage.py staff_mfa_link`) or emailed to the
staff member's own address by an admin who already uses a second factor. It is signed with the
site's key, expires after STAFF_MFA_LINK_HOURS, works once (used links are remembered in the
shared cache, which production requires), and stops working once the account has an
authenticator or its password changes. Opening it, logged in as that staff member, lets this
session add a first authenticator for the next STAFF_MFA_GRANT_MINUTES.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import User

LINK_SALT = "accounts.staff_mfa.link"
GRANT_SESSION_KEY = "staff_mfa_grant"
USED_CACHE_PREFIX = "staff-mfa-link-used:"


class LinkError(Exception):
    """A set-up link that cannot be used; the message says why, in the reader's words."""


@dataclass(frozen=True)
class SetupLink:
    user: User
    token: str


def staff_has_second_factor(user: User) -> bool:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import is_mfa_enabled

    return is_mfa_enabled(user, [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN])


def _account_state(user: User) -> str:
    """Changes when the password does: a link made before a password reset stops working."""
    return hashlib.sha256(f"{user.pk}:{user.password}".encode()).hexdigest()[:20]


def setup_token_make(user: User) -> str:
    if not user.is_staff:
        raise LinkError(f"{user.email} is not staff: only staff set up a second factor this way")
    return signing.dumps({"user": user.pk, "state": _account_state(user)}, salt=LINK_SALT, compress=True)


def setup_url(user: User) -> str:
    """The absolute link for `user`, on SITE_URL."""
    return settings.SITE_URL + reverse("staff:mfa_setup", args=[setup_token_make(user)])


def setup_token_check(token: str) -> SetupLink:
    """The staff member a link was made for, or LinkError saying why it cannot be used."""
    max_age = settings.STAFF_MFA_LINK_HOURS * 3600
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkError(f"This link is older than {settings.STAFF_MFA_LINK_HOURS} hours.") from None
    except signing.BadSignature:
        raise LinkError("This link is not one this site made, or it was cut short.") from None
    user = User.objects.filter(pk=data.get("user"), is_active=True, is_staff=True).first()
    if user is None or data.get("state") != _account_state(user):
        raise LinkError("This link no longer matches the account (its password or staff status changed).")
    if staff_has_second_factor(user):
        raise LinkError("This account already has a second factor set up.")
    if cache.get(_used_key(token)):
        raise LinkError("This link has been used already.")
    return SetupLink(user=user, token=token)


def _used_key(token: str) -> str:
    return USED_CACHE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def setup_link_redeem(request: HttpRequest, link: SetupLink) -> None:
    """Spend the link and let this session (logged in as its staff member) add an authenticator."""
    if request.user.pk != link.user.pk:
        raise LinkError("This link was made for another account.")
    # add() is atomic in the shared cache: of two sessions racing on one link, one wins.
    if not cache.add(_used_key(link.token), True, timeout=settings.STAFF_MFA_LINK_HOURS * 3600):
        raise LinkError("This link has been used already.")
    request.session[GRANT_SESSION_KEY] = {
        "user": link.user.pk,
        "until": time.time() + settings.STAFF_MFA_GRANT_MINUTES * 60,
    }


def session_may_enrol(request: HttpRequest) -> bool:
    """May this session add a first authenticator for its staff user (a link was redeemed)?"""
    grant = request.session.get(GRANT_SESSION_KEY) or {}
    return grant.get("user") == request.user.pk and grant.get("until", 0) > time.time()


def setup_link_email(user: User) -> None:
    """Email `user` their own set-up link (an admin's action: the address proves who opens it)."""
    from django.core.mail import send_mail
    from django.template.loader import render_to_string

    context = {"user": user, "url": setup_url(user), "hours": settings.STAFF_MFA_LINK_HOURS}
    send_mail(
        subject="Daily Horoscope: set up two-factor sign-in for the admin",
        message=render_to_string("emails/staff_mfa_setup.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )


def staff_address_confirm(user: User) -> None:
    """A superuser made on the server: their address counts as confirmed (the operator vouches
    for it), so logging in does not wait for a confirmation email."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).update(primary=False)
    EmailAddress.objects.update_or_create(
        user=user, email__iexact=user.email, defaults={"email": user.email, "verified": True, "primary": True}
    )


def setup_instructions(user: User) -> str:
    """What a command prints for a new staff member: the link, and the three steps."""
    when = "before the admin opens" if settings.ADMIN_REQUIRE_MFA else "(the admin requires it in production)"
    return "\n".join(
        [
            f"Set up two-factor sign-in {when}, with this link (works once, for "
            f"{settings.STAFF_MFA_LINK_HOURS} hours):",
            f"  1. log in at {settings.SITE_URL}{reverse('account_login')}",
            f"  2. open {setup_url(user)}",
            "  3. scan the code it shows with an authenticator app and type the six digits.",
        ]
    )
