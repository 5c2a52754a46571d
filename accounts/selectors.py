"""Reads for the portal pages."""

from datetime import date, datetime

from django.utils import timezone

from accounts.models import Subscription, Topic, User
from accounts.scheduling import local_date_of
from forecasts.models import Forecast

TOPIC_LABELS = dict(Topic.choices)


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


def forecast_sections_for(forecast: Forecast, topics: list[str]) -> list[tuple[str, str]]:
    """(label, text) of the forecast's sections for the reader's topics, in the usual topic order."""
    sections = forecast.sections if isinstance(forecast.sections, dict) else {}
    return [
        (TOPIC_LABELS[topic], sections[topic])
        for topic in TOPIC_LABELS
        if topic in topics and isinstance(sections.get(topic), str) and sections[topic].strip()
    ]
