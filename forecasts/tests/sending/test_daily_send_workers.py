"""The daily send with real parts: two dispatchers, two Celery worker processes on Redis,
PostgreSQL, and django-ses sending over HTTP to the local SES sink."""

import signal
import threading
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
import redis
from django.db import connection
from django.utils import timezone

from accounts.models import Subscription
from accounts.scheduling import local_send_instant, zone
from devtools.servers import base_child_env, celery_worker, database_url, wait_for
from devtools.ses_sink import SesSink
from forecasts.models import Delivery, Forecast
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.send import CLAIM_CHUNK
from forecasts.sending.upkeep import deliveries_requeue_stale
from forecasts.tasks import deliveries_send_task
from forecasts.tests.factories import add_readers, sample_facts
from forecasts.zodiac import SIGN_SLUGS
from tests.support.workers import tasks_sent_to

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MAX_SEND_RATE = 20  # what the sink's GetAccount answers: the limit all workers share

# UTC-11 to UTC+14, with the zones whose clocks change on 9 March 2025 (North America, Cuba)
# and delivery times inside the skipped hour, at midnight and just before it.
READERS = [
    ("Pacific/Pago_Pago", time(6, 0)),
    ("Pacific/Pago_Pago", time(23, 45)),
    ("Pacific/Honolulu", time(6, 0)),
    ("America/Anchorage", time(2, 30)),
    ("America/Los_Angeles", time(2, 0)),
    ("America/Los_Angeles", time(6, 0)),
    ("America/Denver", time(2, 59)),
    ("America/Chicago", time(7, 15)),
    ("America/New_York", time(2, 30)),
    ("America/New_York", time(6, 0)),
    ("America/New_York", time(0, 0)),
    ("America/Havana", time(0, 30)),
    ("America/St_Johns", time(2, 15)),
    ("America/Sao_Paulo", time(6, 0)),
    ("UTC", time(0, 0)),
    ("Europe/London", time(6, 0)),
    ("Europe/Paris", time(6, 0)),
    ("Africa/Cairo", time(8, 0)),
    ("Asia/Tehran", time(6, 30)),
    ("Asia/Kolkata", time(5, 30)),
    ("Asia/Kathmandu", time(6, 0)),
    ("Asia/Tokyo", time(6, 0)),
    ("Australia/Adelaide", time(6, 0)),
    ("Australia/Sydney", time(23, 59)),
    ("Pacific/Auckland", time(6, 0)),
    ("Pacific/Chatham", time(6, 0)),
    ("Pacific/Tongatapu", time(6, 0)),
    ("Pacific/Kiritimati", time(0, 0)),
    ("Pacific/Kiritimati", time(6, 0)),
]


@pytest.fixture(scope="module")
def sink():
    with SesSink(max_send_rate=MAX_SEND_RATE) as sink:
        yield sink


@pytest.fixture(scope="module")
def redis_urls(redis_proc):
    base = f"redis://{redis_proc.host}:{redis_proc.port}"
    return {"broker": f"{base}/0", "cache": f"{base}/1"}


@pytest.fixture(scope="module")
def worker_env(django_db_setup, sink, redis_urls, tmp_path_factory) -> dict[str, str]:
    from django.conf import settings

    return base_child_env(
        DATABASE_URL=database_url(settings.DATABASES["default"]),
        CELERY_BROKER_URL=redis_urls["broker"],
        CELERY_VISIBILITY_TIMEOUT="60",
        REDIS_URL=redis_urls["cache"],
        EMAIL_BACKEND="django_ses.SESBackend",
        AWS_SES_REGION_ENDPOINT_URL=sink.endpoint_url,
        AWS_SES_REGION_NAME="us-east-1",
        DEFAULT_FROM_EMAIL="Daily Horoscope <horoscope@example.test>",
        SES_MAX_SEND_RATE="0",
        SES_RATE_WINDOW_MARGIN="0.1",  # a busy test machine can delay a send tens of ms after its slot
        SEND_BATCH_SIZE="5",
        VAR_DIR=str(tmp_path_factory.mktemp("worker-var")),
    )


@pytest.fixture(scope="module")
def workers(worker_env, artifacts_dir):
    env = worker_env
    processes = [
        celery_worker(env, artifacts_dir / f"daily-send-{name}.log", name=name, concurrency=2) for name in ("w1", "w2")
    ]
    try:
        for process in processes:
            wait_for(lambda p=process: "ready" in p.log(), timeout=60, what="a worker to start")
        yield processes
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
def live(workers, sink, redis_urls):
    """Each test starts with an empty sink, no throttling and an empty shared rate window."""
    redis.Redis.from_url(redis_urls["cache"]).flushdb()
    sink.clear()
    sink.set_throttle(0.0)
    sink.latency = 0.0
    with tasks_sent_to(redis_urls["broker"]):
        yield sink


def forecasts_for_days(first: date, days: int) -> None:
    Forecast.objects.bulk_create(
        Forecast(
            date=first + timedelta(days=n),
            sign=sign,
            status=Forecast.Status.APPROVED,
            headline=f"{sign.title()} on day {n}",
            overview="A plain day, written for the test.",
            sections={"love": "Love text.", "career": "Career text."},
            facts=sample_facts(first + timedelta(days=n)),
        )
        for n in range(days)
        for sign in SIGN_SLUGS
    )


def expected_dates(subscription: Subscription, start: datetime, end: datetime) -> set[date]:
    tz = zone(subscription.time_zone)
    day = start.astimezone(tz).date() - timedelta(days=1)
    found = set()
    while day <= end.astimezone(tz).date() + timedelta(days=1):
        if start < local_send_instant(day, subscription.delivery_time, tz) <= end:
            found.add(day)
        day += timedelta(days=1)
    return found


def test_two_dispatchers_and_two_workers_send_each_reader_one_email_per_local_date_for_48_hours(live):
    sink = live
    start = datetime(2025, 3, 8, 0, 0, tzinfo=UTC)
    end = start + timedelta(hours=48)
    forecasts_for_days(date(2025, 3, 6), 7)
    active = []
    for n, (time_zone, at) in enumerate(READERS):
        active += add_readers(
            time_zone=time_zone, delivery_time=at, sign=SIGN_SLUGS[n % 12], scheduled_from=start, prefix="active"
        )
    silent = []
    for status in ("paused", "unsubscribed", "suppressed"):
        silent += add_readers(2, status=status, time_zone="Europe/Paris", scheduled_from=start, prefix=status)

    steps = []
    now = start
    while now <= end:
        steps.append(now)
        now += timedelta(minutes=20)
    barrier = threading.Barrier(2)
    errors = []

    def dispatcher():
        try:
            for step in steps:
                barrier.wait(timeout=30)
                deliveries_dispatch_due(step)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher, name=f"dispatcher-{i}") for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []

    expected = {(s.pk, day) for s in active for day in expected_dates(s, start, end)}
    assert len(expected) >= 2 * len(active) - 5
    sink.wait_for(len(expected), timeout=60)
    wait_for(
        lambda: not Delivery.objects.exclude(status=Delivery.Status.SENT).exists(),
        timeout=30,
        what="every delivery to be recorded as sent",
    )

    deliveries = {d.pk: d for d in Delivery.objects.all()}
    received = Counter()
    for message in sink.messages:
        delivery = deliveries[int(message.header("X-Horoscope-Delivery"))]
        assert message.to == (Subscription.objects.get(pk=delivery.subscription_id).user.email,)
        assert delivery.ses_message_id == message.message_id
        received[(delivery.subscription_id, delivery.local_date)] += 1
    assert set(received) == expected
    assert max(received.values()) == 1, [key for key, count in received.items() if count > 1]
    silent_addresses = {s.user.email for s in Subscription.objects.filter(pk__in=[s.pk for s in silent])}
    assert not silent_addresses & {m.to[0] for m in sink.messages}
    # The readers whose delivery time the clocks skipped on 9 March got theirs an hour later.
    new_york = Subscription.objects.get(pk=active[8].pk)
    skipped = Delivery.objects.get(subscription=new_york, local_date=date(2025, 3, 9))
    assert skipped.due_at == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)  # 03:30 EDT


def test_under_injected_throttling_everything_is_sent_and_the_shared_rate_holds(live):
    sink = live
    sink.set_throttle(0.3)
    start = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
    forecasts_for_days(date(2025, 3, 9), 1)
    add_readers(60, time_zone="UTC", delivery_time=time(6, 0), scheduled_from=start, sign="aries")

    result = deliveries_dispatch_due(datetime(2025, 3, 9, 6, 0, tzinfo=UTC))
    assert len(result.delivery_ids) == 60

    sink.wait_for(60, timeout=90)
    wait_for(
        lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 60,
        timeout=30,
        what="all 60 deliveries to be recorded as sent",
    )
    assert len(sink.messages) == 60
    assert len({m.to for m in sink.messages}) == 60
    calls = sink.send_calls()
    assert sum(call.status == 429 for call in calls) >= 5  # throttling really happened
    # Two workers, four processes: together they never went over SES's rate in any second.
    assert sink.max_in_window(1.0, accepted_only=False) <= MAX_SEND_RATE
    assert sink.max_in_window(1.0) <= MAX_SEND_RATE


def test_a_worker_killed_mid_batch_strands_one_chunk_at_most_and_never_mails_twice(live, worker_env, artifacts_dir):
    sink = live
    sink.latency = 0.2  # each SendEmail takes a while: the kill lands mid-batch
    forecasts_for_days(date(2025, 3, 9), 1)
    add_readers(60, time_zone="UTC", delivery_time=time(6, 0), scheduled_from=datetime(2025, 3, 9, tzinfo=UTC))
    ids = deliveries_dispatch_due(datetime(2025, 3, 9, 6, 0, tzinfo=UTC), enqueue=False).delivery_ids
    doomed = celery_worker(worker_env, artifacts_dir / "daily-send-doomed.log", name="doomed", queues="doomed")
    try:
        wait_for(lambda: "ready" in doomed.log(), timeout=60, what="the doomed worker to start")
        deliveries_send_task.apply_async(args=[ids], queue="doomed")
        sink.wait_for(CLAIM_CHUNK + 5, timeout=60)  # into its second chunk
    finally:
        doomed.kill(signal.SIGKILL)
    stranded = Delivery.objects.filter(status=Delivery.Status.SENDING).count()
    assert 0 < stranded <= CLAIM_CHUNK
    assert Delivery.objects.filter(status=Delivery.Status.QUEUED).count() >= 60 - 2 * CLAIM_CHUNK

    # The broker hands the unacknowledged task to another worker (acks_late): simulate it now.
    sink.latency = 0.0
    deliveries_send_task.delay(ids)
    wait_for(
        lambda: Delivery.objects.filter(status=Delivery.Status.SENT).count() == 60 - stranded,
        timeout=60,
        what="the queued rest to be sent by the other workers",
    )
    # Later, requeue_stale marks what the dead worker held as unknown: never resent by itself.
    deliveries_requeue_stale(now=timezone.now() + timedelta(minutes=31))
    assert Delivery.objects.filter(status=Delivery.Status.UNKNOWN).count() == stranded
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 60 - stranded

    received = Counter(message.to[0] for message in sink.messages)
    assert max(received.values()) == 1  # nobody got two
    unknown_readers = set(
        Delivery.objects.filter(status=Delivery.Status.UNKNOWN).values_list("subscription__user__email", flat=True)
    )
    missing = {s.user.email for s in Subscription.objects.select_related("user")} - set(received)
    assert missing <= unknown_readers  # only an unknown delivery can have been missed, and the admin can resend it
