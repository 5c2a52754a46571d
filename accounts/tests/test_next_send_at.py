"""next_send_at through the model and the services, with the clock frozen by time-machine."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine

from accounts import scheduling, services
from accounts.models import Subscription
from accounts.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Now: 2025-01-15 12:00 UTC; the 06:00 default everywhere. Expected instants worked out by hand.
@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Pacific/Pago_Pago", utc(2025, 1, 15, 17, 0)),  # UTC-11: it is 01:00 there, 06:00 still to come
        ("Pacific/Honolulu", utc(2025, 1, 15, 16, 0)),  # UTC-10
        ("America/New_York", utc(2025, 1, 16, 11, 0)),  # UTC-5: 07:00 there, so tomorrow
        ("UTC", utc(2025, 1, 16, 6, 0)),
        ("Asia/Kolkata", utc(2025, 1, 16, 0, 30)),  # UTC+5:30
        ("Asia/Kathmandu", utc(2025, 1, 16, 0, 15)),  # UTC+5:45
        ("Australia/Sydney", utc(2025, 1, 15, 19, 0)),  # UTC+11 in January (summer time)
        ("Pacific/Chatham", utc(2025, 1, 15, 16, 15)),  # UTC+13:45 in January
        ("Pacific/Kiritimati", utc(2025, 1, 15, 16, 0)),  # UTC+14: already the 16th there
    ],
)
def test_next_send_at_is_six_local_in_every_zone_from_utc_minus_11_to_plus_14(zone, expected):
    with time_machine.travel(utc(2025, 1, 15, 12, 0), tick=False):
        subscription = SubscriptionFactory(time_zone=zone)
    assert subscription.delivery_time == time(6, 0)
    assert subscription.next_send_at == expected
    subscription.refresh_from_db()
    assert subscription.next_send_at == expected


@pytest.mark.parametrize(
    ("zone", "now", "delivery_time", "expected"),
    [
        # New York springs forward on 2025-03-09: 02:00 EST -> 03:00 EDT.
        ("America/New_York", utc(2025, 3, 8, 12), time(6, 0), utc(2025, 3, 9, 10, 0)),
        ("America/New_York", utc(2025, 3, 8, 12), time(2, 30), utc(2025, 3, 9, 7, 30)),  # = 03:30 EDT
        ("America/New_York", utc(2025, 3, 8, 12), time(1, 59), utc(2025, 3, 9, 6, 59)),  # still EST
        ("America/New_York", utc(2025, 3, 8, 12), time(3, 0), utc(2025, 3, 9, 7, 0)),  # first EDT minute
        # New York falls back on 2025-11-02: 02:00 EDT -> 01:00 EST; 01:30 happens twice.
        ("America/New_York", utc(2025, 11, 1, 12), time(6, 0), utc(2025, 11, 2, 11, 0)),
        ("America/New_York", utc(2025, 11, 1, 12), time(1, 30), utc(2025, 11, 2, 5, 30)),  # the first 01:30 (EDT)
        # Berlin springs forward on 2025-03-30: 02:00 CET -> 03:00 CEST.
        ("Europe/Berlin", utc(2025, 3, 29, 12), time(6, 0), utc(2025, 3, 30, 4, 0)),
        ("Europe/Berlin", utc(2025, 3, 29, 12), time(2, 30), utc(2025, 3, 30, 1, 30)),  # = 03:30 CEST
        # Berlin falls back on 2025-10-26: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        ("Europe/Berlin", utc(2025, 10, 25, 12), time(6, 0), utc(2025, 10, 26, 5, 0)),
        ("Europe/Berlin", utc(2025, 10, 25, 12), time(2, 30), utc(2025, 10, 26, 0, 30)),  # the first 02:30 (CEST)
    ],
)
def test_next_send_at_on_daylight_saving_change_days(zone, now, delivery_time, expected):
    with time_machine.travel(now, tick=False):
        subscription = SubscriptionFactory(time_zone=zone, delivery_time=delivery_time)
    assert subscription.next_send_at == expected


@pytest.mark.parametrize(
    ("zone", "delivery_time", "sent_at", "local_date", "next_day_instant"),
    [
        ("America/New_York", time(1, 30), utc(2025, 11, 2, 5, 30), date(2025, 11, 2), utc(2025, 11, 3, 6, 30)),
        ("Europe/Berlin", time(2, 30), utc(2025, 10, 26, 0, 30), date(2025, 10, 26), utc(2025, 10, 27, 1, 30)),
    ],
)
def test_a_time_that_happens_twice_is_sent_once(zone, delivery_time, sent_at, local_date, next_day_instant):
    from forecasts.models import Delivery
    from forecasts.sending.dispatch import deliveries_dispatch_due

    with time_machine.travel(sent_at - timedelta(hours=12), tick=False):
        subscription = SubscriptionFactory(time_zone=zone, delivery_time=delivery_time)
    assert subscription.next_send_at == sent_at  # the first occurrence
    just_after = sent_at + timedelta(minutes=1)
    with time_machine.travel(just_after, tick=False):
        # Due and not dispatched yet: an edit now keeps it due (the day's email is not skipped).
        subscription.save()
        assert subscription.next_send_at == sent_at
    # The dispatcher sends the first occurrence, and schedules the next day, not the second one.
    assert len(deliveries_dispatch_due(just_after, enqueue=False).delivery_ids) == 1
    subscription.refresh_from_db()
    assert (subscription.last_local_date, subscription.next_send_at) == (local_date, next_day_instant)
    with time_machine.travel(just_after + timedelta(hours=1), tick=False):  # past the second occurrence
        subscription.save()
        assert subscription.next_send_at == next_day_instant
        assert deliveries_dispatch_due(just_after + timedelta(hours=1), enqueue=False).delivery_ids == []
    assert Delivery.objects.filter(subscription=subscription).count() == 1


def test_next_send_at_is_recomputed_when_preferences_change(subscription):
    with time_machine.travel(utc(2025, 6, 1, 12), tick=False):
        services.subscription_update_preferences(subscription, time_zone="Europe/Berlin", delivery_time=time(7, 15))
        assert subscription.next_send_at == utc(2025, 6, 2, 5, 15)
        services.subscription_update_preferences(subscription, time_zone="America/New_York")
        assert subscription.next_send_at == utc(2025, 6, 2, 11, 15)
        assert Subscription.objects.get(pk=subscription.pk).next_send_at == utc(2025, 6, 2, 11, 15)


def test_a_change_after_todays_email_never_schedules_a_second_one_the_same_day(subscription):
    with time_machine.travel(utc(2025, 6, 1, 4, 30), tick=False):  # 06:30 in Paris: today's email went out
        Subscription.objects.filter(pk=subscription.pk).update(last_local_date=date(2025, 6, 1))
        services.subscription_update_preferences(subscription, delivery_time=time(20, 0))
        assert subscription.next_send_at == utc(2025, 6, 2, 18, 0)


def test_only_active_subscriptions_have_a_next_send_time(subscription):
    assert subscription.next_send_at is not None
    services.subscription_pause(subscription)
    assert subscription.next_send_at is None
    services.subscription_resume(subscription)
    assert subscription.next_send_at is not None
    services.subscription_unsubscribe(subscription)
    assert Subscription.objects.get(pk=subscription.pk).next_send_at is None


# Readers whose local date is not the UTC date when their email is due: Pago Pago (UTC-11) at
# 23:45 is already tomorrow in UTC; Kiritimati (UTC+14) at 00:15 is still yesterday in UTC.
# Worked out by hand: 23:45 at UTC-11 on day D is D+1 10:45 UTC; 00:15 at UTC+14 on D is D-1 10:15 UTC.
LOCAL_DATE_NOT_UTC_DATE = [
    # zone, delivery time, created at (UTC), first send (UTC), its local date, the next three sends (UTC)
    (
        "Pacific/Pago_Pago",
        time(23, 45),
        utc(2025, 1, 15, 5, 0),  # 18:00 on the 14th there
        utc(2025, 1, 15, 10, 45),
        date(2025, 1, 14),
        [utc(2025, 1, 16, 10, 45), utc(2025, 1, 17, 10, 45), utc(2025, 1, 18, 10, 45)],
    ),
    (
        "Pacific/Kiritimati",
        time(0, 15),
        utc(2025, 1, 15, 9, 0),  # 23:00 on the 15th there
        utc(2025, 1, 15, 10, 15),
        date(2025, 1, 16),
        [utc(2025, 1, 16, 10, 15), utc(2025, 1, 17, 10, 15), utc(2025, 1, 18, 10, 15)],
    ),
]


@pytest.mark.parametrize(
    ("zone", "delivery_time", "created", "first", "first_local_date", "then"),
    LOCAL_DATE_NOT_UTC_DATE,
    ids=["Pago_Pago-23:45", "Kiritimati-00:15"],
)
def test_next_send_at_when_the_local_date_is_not_the_utc_date(
    zone, delivery_time, created, first, first_local_date, then
):
    from forecasts.models import Delivery
    from forecasts.sending.dispatch import deliveries_dispatch_due

    assert first.date() != first_local_date  # the case under test
    with time_machine.travel(created, tick=False):
        subscription = SubscriptionFactory(time_zone=zone, delivery_time=delivery_time)
    assert subscription.next_send_at == first
    assert scheduling.next_send_at(created, zone, delivery_time) == first

    # The dispatcher, a minute after each send time, for four days: one delivery per local date.
    due, local_date = first, first_local_date
    for expected_next in then:
        assert deliveries_dispatch_due(due - timedelta(minutes=1), enqueue=False).delivery_ids == []
        assert len(deliveries_dispatch_due(due + timedelta(minutes=1), enqueue=False).delivery_ids) == 1
        subscription.refresh_from_db()
        delivery = Delivery.objects.get(subscription=subscription, due_at=due)
        assert delivery.local_date == local_date
        assert (subscription.last_local_date, subscription.next_send_at) == (local_date, expected_next)
        assert scheduling.next_send_at(due + timedelta(minutes=1), zone, delivery_time, local_date) == expected_next
        due, local_date = expected_next, local_date + timedelta(days=1)
    assert Delivery.objects.filter(subscription=subscription).count() == len(then)
