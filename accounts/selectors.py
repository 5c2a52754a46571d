"""Reads for the portal pages."""

from datetime import date, datetime

from django.utils import timezone

from accounts.models import Subscription, User
from accounts.scheduling import local_date_of


def subscription_for_user(user: User, *, reload: bool = False) -> Subscription | None:
    """The user's subscription, or None. A signed-in request's user came with it (accounts/
    auth_backends.py). `reload` reads the row again: needed after a create that failed, which
    leaves its unsaved instance on the user, e.g. when another request created the row first."""
    if reload:
        return Subscription.objects.filter(user=user).first()
    try:
        return user.subscription
    except Subscription.DoesNotExist:
        return None


def reader_local_date(subscription: Subscription, now: datetime | None = None) -> date:
    """The reader's calendar date right now, in their time zone."""
    return local_date_of(now or timezone.now(), subscription.time_zone)
