"""Reads for the portal pages."""

from datetime import date, datetime

from django.utils import timezone

from accounts.models import Subscription, User
from accounts.scheduling import local_date_of
from forecasts.models import Forecast


def subscription_for_user(user: User) -> Subscription | None:
    return Subscription.objects.filter(user=user).first()


def reader_local_date(subscription: Subscription, now: datetime | None = None) -> date:
    """The reader's calendar date right now, in their time zone."""
    return local_date_of(now or timezone.now(), subscription.time_zone)


def forecast_for_reader(subscription: Subscription, local_date: date) -> Forecast | None:
    """Today's written forecast for the reader's sign, if there is one yet."""
    return Forecast.objects.filter(
        sign=subscription.sign, date=local_date, status__in=[Forecast.Status.DRAFT, Forecast.Status.APPROVED]
    ).first()
