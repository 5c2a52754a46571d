"""Test data for forecasts, built in code."""

import uuid
from datetime import date, datetime, time

import factory
from django.utils import timezone

from accounts.models import Subscription, User, all_topics
from accounts.scheduling import next_send_at
from forecasts.models import Forecast


def sample_facts(day: date) -> list[dict]:
    """Facts shaped as forecasts/writing/transits.py writes them: summaries name their instants in UTC,
    and summary_template and instants keep those instants apart."""
    month = f"{day:%b}"
    return [
        {
            "kind": "moon_ingress",
            "bodies": ["moon"],
            "sign": "leo",
            "house": 5,
            "aspect": None,
            "time": f"{day.isoformat()}T14:32:00Z",
            "rank": 70,
            "summary": f"The Moon enters Leo, your 5th house (romance), at 14:32 UTC on {day.day} {month}.",
            "summary_template": "The Moon enters Leo, your 5th house (romance), at {0}.",
            "instants": [f"{day.isoformat()}T14:32:00Z"],
        },
        {
            "kind": "aspect",
            "bodies": ["venus", "mars"],
            "sign": None,
            "house": None,
            "aspect": "trine",
            "time": f"{day.isoformat()}T03:10:00Z",
            "rank": 60,
            "summary": f"Venus trine Mars (exact at 03:10 UTC on {day.day} {month}), linking your 1st and 5th houses.",
            "summary_template": "Venus trine Mars (exact at {0}), linking your 1st and 5th houses.",
            "instants": [f"{day.isoformat()}T03:10:00Z"],
        },
        {
            "kind": "body_in_sign",
            "bodies": ["mercury"],
            "sign": "pisces",
            "house": 12,
            "aspect": None,
            "time": None,
            "rank": 10,
            "summary": "Mercury is in Pisces, your 12th house (rest).",
            "summary_template": "Mercury is in Pisces, your 12th house (rest).",
            "instants": [],
        },
    ]


def facts_stored_before_instants(day: date) -> list[dict]:
    """sample_facts as older Forecast rows hold them: the summary alone names the instants."""
    legacy = ("summary_template", "instants")
    return [{key: value for key, value in fact.items() if key not in legacy} for fact in sample_facts(day)]


class ForecastFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Forecast

    date = date(2025, 3, 9)
    sign = "leo"
    status = Forecast.Status.APPROVED
    headline = "Say it plainly & kindly"
    overview = 'A day for "straight talk" & warm hearts: it\'s yours.'
    sections = factory.LazyFunction(
        lambda: {
            "love": "Love: listen before you answer.",
            "career": "Career: finish one thing <properly>.",
            "money": "Money: count twice, spend once.",
            "health": "Health: an early night pays.",
            "growth": "Growth: write down what you learned.",
        }
    )
    facts = factory.LazyAttribute(lambda forecast: sample_facts(forecast.date))
    generator = Forecast.Generator.OFFLINE


def add_readers(
    count: int = 1,
    *,
    time_zone: str = "Europe/Paris",
    delivery_time: time = time(6, 0),
    sign: str = "leo",
    status: str = Subscription.Status.ACTIVE,
    topics: list[str] | None = None,
    scheduled_from: datetime | None = None,
    prefix: str = "reader",
) -> list[Subscription]:
    """`count` readers in bulk (no password hashing), due from `scheduled_from` (default: now)."""
    tag = uuid.uuid4().hex[:6]
    users = User.objects.bulk_create(
        [User(email=f"{prefix}-{tag}-{i}@example.test", password="!unusable") for i in range(count)]
    )
    start = scheduled_from or timezone.now()
    due = next_send_at(start, time_zone, delivery_time) if status == Subscription.Status.ACTIVE else None
    return Subscription.objects.bulk_create(
        [
            Subscription(
                user=user,
                sign=sign,
                time_zone=time_zone,
                delivery_time=delivery_time,
                topics=list(all_topics() if topics is None else topics),
                status=status,
                confirmed_at=start,
                next_send_at=due,
            )
            for user in users
        ]
    )
