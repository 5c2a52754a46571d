"""Links a reader can follow from an email without logging in.

- Unsubscribe: a signed token per subscription that never expires (a link in a year-old email
  must still work), with its own salt so no other signed value on the site can stand in for it.
- Confirm: a signed token for the double opt-in, bound to the address it was sent to, valid
  for a week.

Emails link with the absolute URLs built here from settings.SITE_URL.
"""

import hashlib
import hmac
import re
import time

from django.conf import settings
from django.core import signing
from django.urls import reverse

UNSUBSCRIBE_SALT = "accounts.unsubscribe.v1"
CONFIRM_SALT = "accounts.subscription-confirm.v1"
CONFIRM_MAX_AGE = 7 * 24 * 3600
# What signing.dumps writes (URL-safe base64 and ':'), which reverse() puts in a URL unchanged.
URL_SAFE_TOKEN_RE = re.compile(r"[A-Za-z0-9_:-]+")


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def unsubscribe_token(subscription) -> str:
    """The non-expiring token that unsubscribes `subscription`."""
    return signing.dumps(subscription.pk, salt=UNSUBSCRIBE_SALT)


def subscription_id_from_unsubscribe_token(token: str) -> int | None:
    """The subscription id a token was made for, or None if it is forged, tampered or malformed."""
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, UnicodeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def unsubscribe_url(subscription) -> str:
    """Absolute one-click unsubscribe URL for List-Unsubscribe headers and the email footer."""
    return unsubscribe_url_for_token(unsubscribe_token(subscription))


def unsubscribe_url_for_token(token: str) -> str:
    return _absolute(reverse("subscription:unsubscribe", args=[token]))


class UnsubscribeLinks:
    """Unsubscribe URLs for many readers in a row (the daily send): the URL is reversed once and
    the signing key derived once, each reader's token is signed; the same URLs as `unsubscribe_url`."""

    SLOT = "hz-token-slot"

    def __init__(self) -> None:
        self._before, self._after = unsubscribe_url_for_token(self.SLOT).split(self.SLOT)
        # What signing.dumps(pk, salt=UNSUBSCRIBE_SALT) derives on every call (TimestampSigner,
        # sha256): the HMAC key from the salt and SECRET_KEY. The tests compare both ways.
        key = hashlib.sha256(f"{UNSUBSCRIBE_SALT}signer{settings.SECRET_KEY}".encode()).digest()
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._second: tuple[int, str] = (-1, "")

    def _token(self, pk) -> str:
        if type(pk) is not int or pk < 0:
            return signing.dumps(pk, salt=UNSUBSCRIBE_SALT)
        now = int(time.time())
        if self._second[0] != now:
            self._second = (now, signing.b62_encode(now))
        value = f"{signing.b64_encode(str(pk).encode()).decode()}:{self._second[1]}"
        mac = self._mac.copy()
        mac.update(value.encode())
        return f"{value}:{signing.b64_encode(mac.digest()).decode()}"

    def url(self, subscription) -> str:
        token = self._token(subscription.pk)
        if not URL_SAFE_TOKEN_RE.fullmatch(token):  # never, from signing.dumps; reverse() would quote it
            return unsubscribe_url_for_token(token)
        return f"{self._before}{token}{self._after}"


def preferences_url() -> str:
    """Absolute URL of the preferences page (the reader logs in if needed)."""
    return _absolute(reverse("portal:preferences"))


def dashboard_url() -> str:
    """Absolute URL of the reader's dashboard."""
    return _absolute(reverse("portal:dashboard"))


def confirmation_token(subscription) -> str:
    """A week-long token confirming `subscription` for the address it is sent to."""
    return signing.dumps({"s": subscription.pk, "e": subscription.user.email.lower()}, salt=CONFIRM_SALT)


def confirmation_from_token(token: str) -> tuple[int, str] | None:
    """(subscription id, email) from a confirmation token, or None if invalid or expired."""
    try:
        value = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except (signing.BadSignature, ValueError, UnicodeError):
        return None
    if not isinstance(value, dict):
        return None
    pk, email = value.get("s"), value.get("e")
    if not isinstance(pk, int) or isinstance(pk, bool) or not isinstance(email, str):
        return None
    return pk, email


def confirmation_url(subscription) -> str:
    """Absolute URL of the double opt-in confirmation page."""
    return _absolute(reverse("subscription:confirm", args=[confirmation_token(subscription)]))
