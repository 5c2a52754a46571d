"""Sending a batch: claim, render once per forecast, send, record (Django's in-memory backend)."""

import re
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Subscription
from accounts.unsubscribe import subscription_id_from_unsubscribe_token
from forecasts.models import Delivery, Forecast
from forecasts.sending import send
from forecasts.sending.delivery_status import STUCK_REASON
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.emails import cache, render
from forecasts.sending.send import deliveries_send
from forecasts.sending.upkeep import deliveries_requeue_stale, deliveries_resend
from forecasts.tests.factories import ForecastFactory, add_readers
from tests.support.concurrency import at_once

pytestmark = pytest.mark.django_db

DAY = date(2025, 3, 9)
START = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
NOON = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)


def dispatched(count: int = 1, **reader) -> list[Delivery]:
    add_readers(count, scheduled_from=START, **reader)
    ids = deliveries_dispatch_due(NOON, enqueue=False).delivery_ids
    return list(Delivery.objects.filter(id__in=ids).select_related("subscription__user").order_by("id"))


def test_a_batch_is_sent_once_and_recorded_even_if_the_task_runs_twice():
    forecast = ForecastFactory(date=DAY, sign="leo")
    deliveries = dispatched(3)
    ids = [d.pk for d in deliveries]

    first = deliveries_send(ids)
    second = deliveries_send(ids)  # a redelivered or duplicated task

    assert (first.claimed, first.sent, second.claimed, second.not_claimed) == (3, 3, 0, 3)
    assert len(mail.outbox) == 3
    assert sorted(m.to[0] for m in mail.outbox) == sorted(d.subscription.user.email for d in deliveries)
    for row in Delivery.objects.filter(id__in=ids):
        assert (row.status, row.attempts, row.error) == (Delivery.Status.SENT, 1, "")
        assert row.sent_at is not None and row.sending_at is not None
        assert row.forecast_id == forecast.pk


def test_a_claim_whose_rows_cannot_be_read_puts_them_back_in_the_queue(monkeypatch):
    from django.db import OperationalError

    ForecastFactory(date=DAY, sign="leo")
    ids = [d.pk for d in dispatched(3)]

    def connection_lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(Delivery, "from_db", connection_lost)  # reading the claimed rows
        with pytest.raises(OperationalError):
            deliveries_send(ids)
    # Claimed, never sent: queued again (not "sending", which would end as unknown), and sent next time.
    assert set(Delivery.objects.values_list("status", "sending_at")) == {(Delivery.Status.QUEUED, None)}
    assert mail.outbox == []
    assert deliveries_send(ids).sent == 3


def test_the_claim_reads_each_delivery_with_its_reader_in_the_same_round_trip():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from forecasts.sending.delivery_status import deliveries_claim_for_sending, delivery_mark

    ids = [d.pk for d in dispatched(4, topics=["love", "money"])]
    Delivery.objects.filter(pk=ids[0]).update(status=Delivery.Status.SENT)  # not queued: not claimed
    with CaptureQueriesContext(connection) as queries:
        claimed = deliveries_claim_for_sending(list(reversed(ids)), NOON)

    assert len(queries) == 1
    assert [d.pk for d in claimed] == ids[1:]
    for delivery in claimed:
        stored = Delivery.objects.select_related("subscription__user").get(pk=delivery.pk)
        assert (delivery.status, delivery.held_by) == (Delivery.Status.SENDING, stored.held_by) != ("", "")
        assert (delivery.attempts, delivery.sending_at, delivery.local_date) == (1, NOON, stored.local_date)
        for name in ("ses_message_id", "error", "forecast_id", "sent_at", "updated_at", "subscription_id"):
            assert getattr(delivery, name) == getattr(stored, name)
        reader, stored_reader = delivery.subscription, stored.subscription
        assert reader.topics == ["love", "money"]
        for name in ("pk", "sign", "time_zone", "delivery_time", "status", "user_id"):
            assert getattr(reader, name) == getattr(stored_reader, name)
        assert reader.user.email == stored_reader.user.email
        assert "due_at" in delivery.get_deferred_fields()  # only what sending reads
    with CaptureQueriesContext(connection) as queries:
        assert [reader.user.email for reader in (d.subscription for d in claimed)]
    assert len(queries) == 0  # no lazy loads

    # The next claim writes these outcomes in the same statement (rows still "sending" only).
    done, moved_on = claimed[0], claimed[1]
    delivery_mark(done, Delivery.Status.SENT, "", held_by="", ses_message_id="ses-1", sent_at=NOON)
    delivery_mark(moved_on, Delivery.Status.SENT, "", held_by="", ses_message_id="ses-2", sent_at=NOON)
    Delivery.objects.filter(pk=moved_on.pk).update(status=Delivery.Status.DELIVERED)  # an SES event came first
    (later,) = dispatched(1)
    with CaptureQueriesContext(connection) as queries:
        assert [d.pk for d in deliveries_claim_for_sending([later.pk], NOON, record=[done, moved_on])] == [later.pk]
    assert len(queries) == 1
    stored = {d.pk: d for d in Delivery.objects.filter(pk__in=[done.pk, moved_on.pk, later.pk])}
    assert (stored[done.pk].status, stored[done.pk].ses_message_id, stored[done.pk].held_by) == ("sent", "ses-1", "")
    assert (stored[moved_on.pk].status, stored[moved_on.pk].ses_message_id) == ("delivered", "")
    assert stored[later.pk].status == Delivery.Status.SENDING


@pytest.mark.django_db(transaction=True)
def test_two_senders_given_the_same_batch_at_once_send_each_email_once(monkeypatch):
    monkeypatch.setattr(send, "CLAIM_CHUNK", 5)  # many claims each, so the two interleave
    ForecastFactory(date=DAY, sign="leo")
    ids = [d.pk for d in dispatched(120)]

    reports = at_once(lambda: deliveries_send(ids))

    assert sum(report.sent for report in reports) == 120
    assert sum(report.claimed for report in reports) == 120
    assert len(mail.outbox) == len({m.to[0] for m in mail.outbox}) == 120
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Delivery.Status.SENT, 1)}


def test_while_another_worker_writes_the_forecast_the_delivery_waits_in_the_queue_with_its_reason():
    ForecastFactory(date=DAY, sign="leo", status="generating", claimed_at=timezone.now())
    (delivery,) = dispatched()

    report = deliveries_send([delivery.pk])

    delivery.refresh_from_db()
    assert report.waiting_for_forecast == 1 and mail.outbox == []
    assert delivery.status == Delivery.Status.QUEUED
    assert "Waiting for the Leo forecast of 2025-03-09" in delivery.error
    assert delivery.attempts == 1

    Forecast.objects.filter(date=DAY, sign="leo").update(status="approved")
    assert deliveries_send([delivery.pk]).sent == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == (Delivery.Status.SENT, 2, "")


def test_the_generating_lookup_is_asked_for_every_missing_forecast(monkeypatch):
    (delivery,) = dispatched(sign="virgo")
    asked = []

    def generate_on_demand(day, sign, **options):
        asked.append((day, sign))
        return ForecastFactory(date=day, sign=sign, headline="Written on demand")

    monkeypatch.setattr(send, "forecast_get_or_generate", generate_on_demand)
    assert deliveries_send([delivery.pk]).sent == 1
    assert asked == [(DAY, "virgo")]
    assert mail.outbox[0].subject == "Virgo, Sunday 9 March: Written on demand"


def test_a_forecast_nobody_prepared_is_written_on_demand_and_sent():
    (delivery,) = dispatched(sign="aquarius")
    assert not Forecast.objects.filter(date=DAY, sign="aquarius").exists()

    assert deliveries_send([delivery.pk]).sent == 1

    forecast = Forecast.objects.get(date=DAY, sign="aquarius")
    assert forecast.is_ready and forecast.grounded
    # Written offline even when a model is configured: a send batch never waits on one.
    assert forecast.generator == Forecast.Generator.OFFLINE
    assert "written at send time" in forecast.fallback_reason
    delivery.refresh_from_db()
    assert (delivery.status, delivery.forecast_id) == (Delivery.Status.SENT, forecast.pk)
    assert forecast.headline in mail.outbox[0].subject


def test_readers_who_left_after_dispatch_get_nothing():
    ForecastFactory(date=DAY, sign="leo")
    stays, pauses, leaves = dispatched(3)
    Subscription.objects.filter(pk=pauses.subscription_id).update(status="paused")
    Subscription.objects.filter(pk=leaves.subscription_id).update(status="unsubscribed")

    report = deliveries_send([stays.pk, pauses.pk, leaves.pk])

    assert (report.sent, report.cancelled) == (1, 2)
    assert [m.to[0] for m in mail.outbox] == [stays.subscription.user.email]
    cancelled = Delivery.objects.get(pk=leaves.pk)
    assert cancelled.status == Delivery.Status.CANCELLED
    assert cancelled.error == "Not sent: the subscription is unsubscribed"


def test_the_html_is_inlined_once_per_forecast_until_the_forecast_changes(monkeypatch):
    leo = ForecastFactory(date=DAY, sign="leo")
    ForecastFactory(date=DAY, sign="aries")
    # More than one claim chunk, and two batches: the rendered forecast outlives both.
    ids = [d.pk for d in dispatched(23, sign="leo")] + [d.pk for d in dispatched(3, sign="aries")]
    calls = []
    real_inline = render.inline_css

    def counting_inline(document: str) -> str:
        calls.append(document)
        return real_inline(document)

    monkeypatch.setattr(render, "inline_css", counting_inline)
    assert deliveries_send(ids[:20]).sent == 20
    assert deliveries_send(ids[20:]).sent == 6
    assert len(calls) == 2
    assert len(mail.outbox) == 26

    leo.headline = "An edited headline"
    leo.save()  # an admin's edit: readers still to come get the new text
    assert cache.send_parts_cache.get(leo, "").subject.endswith("An edited headline")
    assert len(calls) == 3
    # Each email is still its reader's own.
    for message in mail.outbox:
        html = message.alternatives[0][0]
        assert message.to[0] in html and message.to[0] in message.body


def test_a_batch_loads_its_forecasts_key_fields_and_the_whole_row_only_to_render_it():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    leo = ForecastFactory(date=DAY, sign="leo", headline="The first headline")
    first, second, third = ([d.pk for d in dispatched(2, sign="leo")] for _ in range(3))

    def forecast_loads(queries) -> list[str]:
        return [q["sql"] for q in queries if 'FROM "forecasts_forecast"' in q["sql"]]

    with CaptureQueriesContext(connection) as batch:
        assert deliveries_send(first).sent == 2
    key_fields, whole_row = forecast_loads(batch)  # the whole row once, to render the email
    assert '"facts"' not in key_fields and '"facts"' in whole_row
    with CaptureQueriesContext(connection) as batch:
        assert deliveries_send(second).sent == 2
    (key_fields,) = forecast_loads(batch)  # rendered already: only what finds it
    assert '"facts"' not in key_fields

    leo.headline = "An edited headline"
    leo.save()
    assert deliveries_send(third).sent == 2
    subjects = [message.subject for message in mail.outbox]
    assert [subject.endswith("An edited headline") for subject in subjects] == [False] * 4 + [True] * 2


def test_the_email_has_its_headers_text_and_dark_mode_ready_html(settings):
    settings.AWS_SES_CONFIGURATION_SET = "daily-horoscope-events"
    ForecastFactory(date=DAY, sign="leo")
    (delivery,) = dispatched(topics=["love", "money"])
    deliveries_send([delivery.pk])
    (message,) = mail.outbox
    headers = message.extra_headers
    # The token is signed with a timestamp, so it is checked by what it names, not compared.
    (one_click,) = re.fullmatch(r"<(.+)>", headers["List-Unsubscribe"]).groups()
    assert one_click.startswith(settings.SITE_URL + "/unsubscribe/")
    token = one_click.rstrip("/").rsplit("/", 1)[-1]
    assert subscription_id_from_unsubscribe_token(token) == delivery.subscription_id
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["X-SES-CONFIGURATION-SET"] == "daily-horoscope-events"
    assert headers["X-Horoscope-Delivery"] == str(delivery.pk)
    assert re.fullmatch(rf"<[^@>]+@{re.escape(urlsplit(settings.SITE_URL).hostname)}>", headers["Message-ID"])
    assert message.subject == "Leo, Sunday 9 March: Say it plainly & kindly"

    text = message.body
    assert "Say it plainly & kindly" in text
    assert 'A day for "straight talk" & warm hearts: it\'s yours.' in text
    assert "Career: finish one thing <properly>." not in text  # a topic the reader did not choose
    assert "Love: listen before you answer." in text and "Money: count twice, spend once." in text
    for artifact in ("&amp;", "&quot;", "&#x27;", "&lt;", "&gt;", "[[hz:", "<!--"):
        assert artifact not in text
    # Event times in the reader's zone (Paris is UTC+1 in March).
    assert "The Moon enters Leo, your 5th house (romance), at 15:32 (Europe/Paris)." in text
    # "In the sky" runs from the 06:00 delivery to the end of the reader's day: not what was
    # exact at 04:10, before the email arrived.
    assert "Venus trine Mars" not in text
    assert "UTC on 9 Mar," not in text and "UTC on 9 Mar)" not in text
    assert f"Unsubscribe: {one_click}" in text
    assert "?tz=Europe/Paris" in text

    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    head = html.split("</head>")[0]
    assert '<meta name="color-scheme" content="light dark">' in head
    assert "@media (prefers-color-scheme: dark)" in head
    assert 'class="preheader" style="display: none;' in html
    assert 'class="headline" style="' in html  # rules were inlined
    assert "Say it plainly &amp; kindly" in html
    assert "Career: finish one thing" not in html
    assert "at 15:32 (Europe/Paris)" in html
    assert f'href="{one_click}"' in html and ">Unsubscribe</a>" in html
    # The sky wheel is a PNG the site serves (mail clients strip SVG), its positions told in text.
    assert f'src="{settings.SITE_URL}/sky/wheel-1/2025-03-09.png"' in html and "<svg" not in html
    assert "The sky at noon UTC on 9 March 2025: Sun " in html
    assert "[[hz:" not in html and "hz:section" not in html


def test_time_slots_read_in_each_readers_zone_and_in_the_sky_covers_their_own_day():
    story = "Venus slips into Aries [[at:2025-03-09T14:32Z]]. Keep the evening free."
    ForecastFactory(
        date=DAY, sign="leo", overview=story, advice={"do": "Call [[at:2025-03-09T14:32Z]].", "dont": "Rush."}
    )
    paris = dispatched(time_zone="Europe/Paris", delivery_time=time(6, 0))
    tokyo = dispatched(time_zone="Asia/Tokyo", delivery_time=time(20, 0))
    deliveries_send([d.pk for d in paris + tokyo])
    by_zone = {message.body.split("every day at ")[1].split(")")[0]: message for message in mail.outbox}
    paris_text, tokyo_text = by_zone["06:00 (Europe/Paris"].body, by_zone["20:00 (Asia/Tokyo"].body

    assert "Venus slips into Aries at 15:32 this afternoon. Keep the evening free." in paris_text
    assert "Venus slips into Aries at 23:32 tonight." in tokyo_text
    assert "Do: Call at 15:32 this afternoon." in paris_text and "Don't: Rush." in paris_text
    # Paris at 06:00 still has the Moon's 15:32 change of sign ahead; Tokyo's day ends at midnight,
    # after 23:32 the same change, but its reader's 20:00 delivery is before it too.
    assert "The Moon enters Leo" in paris_text and "The Moon enters Leo" in tokyo_text
    html = by_zone["06:00 (Europe/Paris"].alternatives[0][0]
    assert "at 15:32 this afternoon" in html and "[[" not in html
    assert 'class="preheader"' in html and "Keep the evening free." in html.split('class="preheader"')[1][:300]


def test_deliveries_stuck_in_sending_become_unknown_and_are_not_resent(settings):
    ForecastFactory(date=DAY, sign="leo")
    stuck, fresh = dispatched(2)
    long_ago = timezone.now() - timedelta(minutes=settings.DELIVERY_STUCK_SENDING_MINUTES + 1)
    Delivery.objects.filter(pk=stuck.pk).update(status="sending", sending_at=long_ago)
    Delivery.objects.filter(pk=fresh.pk).update(status="sending", sending_at=timezone.now())

    report = deliveries_requeue_stale()

    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert report.stuck == 1
    assert (stuck.status, stuck.error) == (Delivery.Status.UNKNOWN, STUCK_REASON)
    assert fresh.status == Delivery.Status.SENDING
    assert deliveries_send([stuck.pk]).claimed == 0  # a late task does not send it either
    assert mail.outbox == []


def test_stale_queued_deliveries_are_handed_to_a_worker_again(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    from forecasts.sending import enqueue

    batches = []
    monkeypatch.setattr(enqueue, "send_batch", batches.append)
    stale, _recent = dispatched(2)
    old = timezone.now() - timedelta(minutes=settings.DELIVERY_STALE_QUEUED_MINUTES + 1)
    Delivery.objects.update(due_at=timezone.now() - timedelta(hours=1))
    Delivery.objects.filter(pk=stale.pk).update(updated_at=old)

    with django_capture_on_commit_callbacks(execute=True):
        report = deliveries_requeue_stale()

    assert report.requeued == 1 and batches == [[stale.pk]]
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_requeue_stale().requeued == 0  # just handed over: not stale again yet


def test_deliveries_far_past_their_time_expire_with_their_last_reason(settings):
    (delivery,) = dispatched()
    old = timezone.now() - timedelta(hours=settings.DELIVERY_EXPIRE_HOURS + 1)
    Delivery.objects.filter(pk=delivery.pk).update(due_at=old, updated_at=old, error="Waiting for the Leo forecast")

    assert deliveries_requeue_stale().expired == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.error.startswith("Expired: not sent within")
    assert delivery.error.endswith("Last reason: Waiting for the Leo forecast")


def test_resend_puts_failed_and_unknown_deliveries_back_and_sends_them(django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from horoscope_site.celery import app

    app.conf.task_always_eager = True
    try:
        ForecastFactory(date=DAY, sign="leo")
        failed, unknown, sent = dispatched(3)
        Delivery.objects.filter(pk=failed.pk).update(status="failed", error="SES MessageRejected")
        Delivery.objects.filter(pk=unknown.pk).update(status="unknown", error=STUCK_REASON)
        Delivery.objects.filter(pk=sent.pk).update(status="sent")

        with django_capture_on_commit_callbacks(execute=True):
            assert deliveries_resend([failed.pk, unknown.pk, sent.pk]) == 2
    finally:
        app.conf.task_always_eager = False
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [failed.subscription.user.email, unknown.subscription.user.email]
    )
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_sending_costs_a_few_queries_per_claim_chunk_never_one_per_email():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ForecastFactory(date=DAY, sign="leo")
    deliveries = dispatched(80)
    ids = [d.pk for d in deliveries]
    with CaptureQueriesContext(connection) as small:
        assert deliveries_send(ids[:20]).sent == 20
    with CaptureQueriesContext(connection) as large:
        assert deliveries_send(ids[20:]).sent == 60
    # Three times the chunks: at most three times the queries (one more per email would be 40 more).
    assert len(large) <= 3 * len(small) and len(small) <= 8, (len(small), len(large))
    assert len(mail.outbox) == 80
