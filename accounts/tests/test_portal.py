"""The dashboard and the subscription's status buttons."""

from datetime import UTC, date, datetime

import pytest
import time_machine

from accounts import services
from accounts.models import Subscription
from accounts.tests.factories import SubscriptionFactory
from forecasts.models import Forecast

pytestmark = pytest.mark.django_db


def test_dashboard_shows_the_readers_forecast_for_their_sign_and_local_date(client, reader):
    # 20:00 UTC on 14 March is already 15 March in Kiritimati (UTC+14).
    subscription = SubscriptionFactory(
        user=reader, sign="pisces", time_zone="Pacific/Kiritimati", topics=["love", "money"]
    )
    sections = {
        "love": "Tender words land well.",
        "career": "Not for this reader.",
        "money": "Count twice, spend once.",
    }
    Forecast.objects.create(
        date=date(2025, 3, 15),
        sign="pisces",
        status="approved",
        headline="A tide turns",
        overview="The Moon joins your sign.",
        sections=sections,
    )
    Forecast.objects.create(date=date(2025, 3, 14), sign="pisces", status="approved", headline="Yesterday's news")
    Forecast.objects.create(date=date(2025, 3, 15), sign="virgo", status="approved", headline="Another sign")
    client.force_login(reader)
    with time_machine.travel(datetime(2025, 3, 14, 20, 0, tzinfo=UTC), tick=False):
        html = client.get("/portal/").content.decode()
    assert "A tide turns" in html and "The Moon joins your sign." in html
    assert "Tender words land well." in html and "Count twice, spend once." in html
    assert "Not for this reader." not in html  # career is not one of their topics
    assert "Yesterday's news" not in html and "Another sign" not in html
    assert "Saturday 15 March 2025" in html
    assert subscription.sign == "pisces"


def test_a_new_york_readers_first_dashboard_shows_their_own_dates_reading_written_at_once(client, reader):
    # 02:30 UTC on 2 July is still 1 July (22:30) in New York: a fresh site, no reading written.
    with time_machine.travel(datetime(2025, 7, 2, 2, 30, tzinfo=UTC), tick=False):
        SubscriptionFactory(user=reader, sign="cancer", time_zone="America/New_York")
        client.force_login(reader)
        html = client.get("/portal/").content.decode()
    written = Forecast.objects.get(sign="cancer")
    assert written.date == date(2025, 7, 1) and written.is_ready
    assert written.generator == "offline" and "on demand" in written.fallback_reason
    assert "Tuesday 1 July 2025" in html and written.headline in html
    assert "not written yet" not in html and "being written" not in html
    assert not Forecast.objects.filter(date=date(2025, 7, 2)).exists()  # not New York's date yet


@pytest.mark.parametrize(
    ("time_zone", "their_date", "shown"),
    [
        ("Etc/GMT+12", date(2026, 12, 4), "Friday 4 December 2026"),  # UTC-12: 22:30 the day before
        ("Europe/London", date(2026, 12, 5), "Saturday 5 December 2026"),
        ("Pacific/Kiritimati", date(2026, 12, 6), "Sunday 6 December 2026"),  # UTC+14: 00:30 the day after
    ],
)
def test_at_10_30_utc_three_dates_exist_and_each_reader_sees_their_own(client, reader, time_zone, their_date, shown):
    with time_machine.travel(datetime(2026, 12, 5, 10, 30, tzinfo=UTC), tick=False):
        SubscriptionFactory(user=reader, sign="aries", time_zone=time_zone)
        client.force_login(reader)
        html = client.get("/portal/").content.decode()
    (written,) = Forecast.objects.filter(sign="aries")
    assert written.date == their_date and written.is_ready
    assert shown in html and written.headline in html


def test_while_another_worker_writes_the_reading_the_dashboard_says_so_and_when_the_email_comes(
    client, reader, monkeypatch
):
    from forecasts.web import readings

    monkeypatch.setattr(readings, "ON_DEMAND_WAIT_SECONDS", 0.3)
    with time_machine.travel(datetime(2025, 7, 1, 12, 0, tzinfo=UTC), tick=False):
        SubscriptionFactory(user=reader, sign="cancer", time_zone="America/Los_Angeles")
        # A fresh claim: the worker holding it is writing the reading right now.
        Forecast.objects.create(date=date(2025, 7, 1), sign="cancer", claimed_at=datetime.now(UTC))
        client.force_login(reader)
        html = client.get("/portal/").content.decode()
    assert "Cancer" in html
    assert "being written right now" in html
    # 12:00 UTC is 05:00 in Los Angeles: today's 06:00 is still ahead.
    assert "Tuesday 1 July, 06:00" in html and "America/Los_Angeles" in html
    assert Forecast.objects.get(sign="cancer").status == Forecast.Status.GENERATING  # left to its writer


def test_generating_or_failed_forecasts_are_not_shown(reader_client, subscription):
    Forecast.objects.create(date=date.today(), sign=subscription.sign, status="generating", headline="Half-baked")
    html = reader_client.get("/portal/").content.decode()
    assert "Half-baked" not in html


def test_pause_resume_unsubscribe_and_resubscribe(reader_client, subscription):
    assert reader_client.post("/portal/subscription/pause/").status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == "paused" and subscription.next_send_at is None
    assert "Paused: no emails until you resume." in reader_client.get("/portal/").content.decode()

    reader_client.post("/portal/subscription/resume/")
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.next_send_at is not None

    reader_client.post("/portal/subscription/unsubscribe/")
    subscription.refresh_from_db()
    assert subscription.status == "unsubscribed" and subscription.next_send_at is None

    reader_client.post("/portal/subscription/resubscribe/")
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.next_send_at is not None


def test_a_status_change_that_does_not_apply_is_a_message_not_an_error(reader_client, subscription):
    response = reader_client.post("/portal/subscription/resume/", follow=True)
    assert response.status_code == 200
    assert "Only a paused subscription can be resumed." in response.content.decode()
    assert reader_client.get("/portal/subscription/pause/").status_code == 405


def test_resubscribing_after_suppression_needs_a_new_confirmation(reader_client, subscription, mailoutbox):
    services.subscription_suppress(subscription, "hard bounce")
    html = reader_client.get("/portal/").content.decode()
    assert "hard bounce" in html
    reader_client.post("/portal/subscription/resubscribe/")
    subscription.refresh_from_db()
    assert subscription.status == "pending" and subscription.next_send_at is None
    [message] = mailoutbox
    assert "/subscribe/confirm/" in message.body


def test_suppress_and_unsubscribe_are_idempotent(subscription):
    assert services.subscription_suppress(subscription, "complaint") is True
    assert services.subscription_suppress(subscription, "complaint") is False
    assert services.subscription_unsubscribe(subscription) is True
    assert services.subscription_unsubscribe(subscription) is False
    assert Subscription.objects.get(pk=subscription.pk).status == "unsubscribed"


def test_status_changes_keep_what_the_dispatcher_wrote_meanwhile(subscription):
    stale = Subscription.objects.get(pk=subscription.pk)
    Subscription.objects.filter(pk=subscription.pk).update(last_local_date=date(2030, 1, 1))
    services.subscription_pause(stale)
    services.subscription_resume(stale)
    stored = Subscription.objects.get(pk=subscription.pk)
    assert stored.last_local_date == date(2030, 1, 1)
    assert stored.next_send_at.date() >= date(2030, 1, 2)
