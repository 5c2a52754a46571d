"""Sending through django-ses (SESv2) over HTTP: the local SES sink, and moto in server mode."""

import time
from datetime import UTC, date, datetime

import pytest
from botocore.config import Config
from django.core.management import call_command

from devtools.servers import moto_server
from devtools.ses_sink import SesSink
from forecasts.models import Delivery
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.send import DeliveriesRetryLater, DeliveriesThrottled, deliveries_send
from forecasts.tests.factories import ForecastFactory, add_readers

pytestmark = pytest.mark.django_db

DAY = date(2025, 3, 9)
START = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
NOON = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
def sink(settings):
    with SesSink(max_send_rate=50) as sink:
        settings.EMAIL_BACKEND = "django_ses.SESBackend"
        settings.AWS_SES_REGION_ENDPOINT_URL = sink.endpoint_url
        settings.SES_MAX_SEND_RATE = 0  # ask the sink (GetAccount)
        settings.REDIS_URL = ""
        settings.SEND_RATE_LIMITER = "forecasts.sending.rate_stores.DatabaseRateLimiter"
        settings.DEFAULT_FROM_EMAIL = "Daily Horoscope <horoscope@example.test>"
        yield sink


def dispatched(count: int) -> list[int]:
    ForecastFactory(date=DAY, sign="leo")
    add_readers(count, scheduled_from=START)
    return deliveries_dispatch_due(NOON, enqueue=False).delivery_ids


def test_sent_mail_reaches_ses_and_its_message_id_is_recorded(sink, settings):
    settings.AWS_SES_CONFIGURATION_SET = "horoscope-events"
    ids = dispatched(3)

    assert deliveries_send(ids).sent == 3

    messages = {m.to[0]: m for m in sink.messages}
    assert len(messages) == 3
    for delivery in Delivery.objects.filter(id__in=ids).select_related("subscription__user"):
        message = messages[delivery.subscription.user.email]
        assert delivery.status == Delivery.Status.SENT
        assert delivery.ses_message_id == message.message_id
        assert message.configuration_set == "horoscope-events"
        assert message.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        assert message.header("List-Unsubscribe").strip().startswith("<http")
        assert message.from_address == "Daily Horoscope <horoscope@example.test>"
    assert [call.operation for call in sink.calls].count("GetAccount") == 1


def test_a_rejected_address_fails_for_good_and_the_rest_of_the_batch_goes_out(sink):
    ids = dispatched(3)
    rejected = Delivery.objects.select_related("subscription__user").get(pk=ids[1])
    sink.reject(rejected.subscription.user.email)

    report = deliveries_send(ids)
    deliveries_send(ids)  # a retry must not try it again

    assert (report.sent, report.failed) == (2, 1)
    rejected.refresh_from_db()
    assert rejected.status == Delivery.Status.FAILED
    assert rejected.error.startswith("SES MessageRejected: ")
    assert [c.to for c in sink.send_calls()].count((rejected.subscription.user.email,)) == 1


def test_throttling_is_retried_under_the_shared_rate_until_everything_is_sent(sink):
    sink.max_send_rate = 20
    sink.set_throttle(0.4)
    ids = dispatched(30)

    started = time.monotonic()
    for _ in range(20):  # what the task's autoretry does
        try:
            deliveries_send(ids)
        except DeliveriesThrottled:
            continue
        if not Delivery.objects.exclude(status="sent").exists():
            break
    assert time.monotonic() - started < 30

    assert Delivery.objects.filter(status="sent").count() == 30
    assert len(sink.messages) == 30
    throttled = [c for c in sink.send_calls() if c.error == "TooManyRequestsException"]
    assert throttled, "the sink should have throttled some calls"
    # Every call, throttled or not, went through the shared limiter.
    assert sink.max_in_window(1.0, accepted_only=False) <= 20


def test_requests_held_up_on_their_way_to_ses_never_crowd_a_second(sink, settings):
    sink.max_send_rate = 20
    sink.hold_up(0.15, 0.2)  # 15% of requests reach SES 200 ms late, eight times the margin
    settings.SEND_CONCURRENCY = 8  # enough threads that a held-up request holds up no other
    ids = dispatched(50)

    report = deliveries_send(ids)

    assert report.sent == 50
    assert sink.max_in_window(1.0) <= 20
    # The batch says how often a late answer held the schedule back, and that it was in time.
    assert report.rate_held_back >= 1
    assert report.rate_held_back_too_late == 0


def test_an_answer_over_a_second_late_is_reported_and_logged(sink, settings, caplog):
    # At 2 a second, the slot two places on from the first is taken about a second after it;
    # every request reaching SES 1.5 s late, the first answer comes after that slot was booked.
    sink.max_send_rate = 2
    sink.hold_up(1.0, 1.5)
    settings.SEND_CONCURRENCY = 4
    ids = dispatched(4)

    report = deliveries_send(ids)

    assert report.sent == 4
    assert report.rate_held_back_too_late >= 1
    assert report.as_dict()["rate_held_back_too_late"] == report.rate_held_back_too_late  # in the task's result
    warning = next(r for r in caplog.records if "answered more than a second after" in r.getMessage())
    assert warning.levelname == "WARNING" and "more than 2 emails in one second" in warning.getMessage()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_server_error_puts_the_batch_back_in_the_queue_for_a_retry(sink, settings, concurrency):
    settings.SEND_CONCURRENCY = concurrency
    ids = dispatched(6)
    sink.fail_next(1, status=500, code="InternalFailure")

    with pytest.raises(DeliveriesRetryLater):
        deliveries_send(ids)
    # Emails already in flight when the error came back were sent and recorded; nothing more
    # was handed over, and the rest is back in the queue with the reason.
    queued = Delivery.objects.filter(status="queued")
    sent_at_once = Delivery.objects.filter(status="sent").count()
    assert queued.count() + sent_at_once == 6 and queued.count() >= 1
    if concurrency == 1:
        assert sent_at_once == 0  # the first call failed: nothing else was tried
    assert all("InternalFailure" in delivery.error for delivery in queued)
    assert len(sink.messages) == sent_at_once

    assert deliveries_send(ids).sent == 6 - sent_at_once
    assert len(sink.messages) == 6 and len({m.to for m in sink.messages}) == 6


def test_a_worker_keeps_several_ses_calls_in_flight_but_never_more_than_its_concurrency(sink, settings):
    settings.SEND_CONCURRENCY = 3
    sink.latency = 0.2  # SES answering slowly: the calls overlap
    ids = dispatched(12)
    assert deliveries_send(ids[:9]).sent == 9
    assert sink.most_in_progress == 3
    assert len({m.to for m in sink.messages}) == 9

    settings.SEND_CONCURRENCY = 1
    sink.clear()
    assert deliveries_send(ids[9:]).sent == 3
    assert sink.most_in_progress == 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_no_answer_after_sending_is_unknown_and_never_resent(sink, settings, concurrency):
    settings.SEND_CONCURRENCY = concurrency
    settings.AWS_SES_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=0.5)
    sink.latency = 1.0  # SES accepts, but the answer comes too late
    ids = dispatched(2)

    with pytest.raises(DeliveriesRetryLater):
        deliveries_send(ids)
    sink.latency = 0
    first, second = Delivery.objects.filter(id__in=ids).order_by("id")
    assert first.status == Delivery.Status.UNKNOWN and "Not resent automatically" in first.error
    if concurrency == 1:
        assert second.status == Delivery.Status.QUEUED  # never handed over: safe to send
        assert deliveries_send(ids).sent == 1
    else:
        # Both were in flight together: both uncertain, neither is put back.
        assert second.status == Delivery.Status.UNKNOWN
        assert deliveries_send(ids).sent == 0
    # Every reader got exactly one email (the one SES accepted).
    recipients = [m.to[0] for m in sink.messages]
    assert sorted(recipients) == sorted(set(recipients))
    assert len(recipients) == 2


@pytest.fixture(scope="module")
def moto_ses_url():
    import boto3

    with moto_server() as url:
        # moto, like SES, refuses a sender that was not verified first.
        boto3.client("ses", endpoint_url=url, region_name="us-east-1").verify_email_identity(
            EmailAddress="horoscope@example.test"
        )
        yield url


@pytest.fixture
def moto_ses(settings, moto_ses_url):
    settings.EMAIL_BACKEND = "django_ses.SESBackend"
    settings.AWS_SES_REGION_ENDPOINT_URL = moto_ses_url
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.DEFAULT_FROM_EMAIL = "horoscope@example.test"
    settings.SES_MAX_SEND_RATE = 10  # moto does not serve SESv2 GetAccount
    return moto_ses_url


def sent_by_moto() -> list:
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    return list(get_backend("ses")[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def test_a_daily_batch_goes_through_moto_server(moto_ses):
    before = len(sent_by_moto())
    ids = dispatched(2)
    assert deliveries_send(ids).sent == 2
    sent = sent_by_moto()[before:]
    assert len(sent) == 2
    recorded = set(Delivery.objects.values_list("ses_message_id", flat=True))
    assert {message.id for message in sent} == recorded
    assert all("List-Unsubscribe-Post: List-Unsubscribe=One-Click" in message.raw_data for message in sent)


def test_send_test_email_command_sends_a_sample_through_moto(moto_ses, capsys):
    before = len(sent_by_moto())
    call_command("send_test_email", "someone@example.test", "--sign", "gemini", "--time-zone", "Asia/Tokyo")
    (message,) = sent_by_moto()[before:]
    assert "someone@example.test" in message.destinations
    assert "Subject: [Test] Gemini," in message.raw_data
    out = capsys.readouterr().out
    assert out.startswith("Sent a sample Gemini email to someone@example.test (SES message id ")
