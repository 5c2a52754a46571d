"""The LLM endpoint hanging or down, and Pinecone unreachable, while a day is prepared and sent.

Generation runs on a real worker (the prepare task, and the send path writing a forecast nobody
prepared); the emails go through django-ses to the sink. Forecasts fall back to the offline
composer or to the local passage index, say so in `fallback_reason`, and the emails go out on time.
"""

import secrets
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from accounts.scheduling import local_send_instant, zone
from devtools.fake_openai import FakeOpenAI, Scripted
from devtools.servers import free_port, wait_for
from forecasts.models import Delivery, Forecast
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.tasks import forecasts_prepare_task
from forecasts.tests.factories import add_readers
from forecasts.tests.writing.answers import grounded_answer
from forecasts.writing.knowledge import knowledge_load
from tests.faults.conftest import assert_one_email_each, statuses

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OPENAI = "forecasts.writing.generators.openai_responses.OpenAIGenerator"


def dummy_key(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def prepare_today(faults) -> list[Forecast]:
    """What beat does ahead of the day: the prepare task on a worker, for today's UTC date.

    The worker reads its own clock when the task runs: just before midnight UTC that may already
    be tomorrow, so the day is the one of the two that got its twelve forecasts.
    """
    enqueued_on = timezone.now().date()
    candidates = (enqueued_on, enqueued_on + timedelta(days=1))
    with faults.enqueue():
        forecasts_prepare_task.delay(day=enqueued_on.isoformat())

    def written() -> list:
        return [
            day for day in candidates if Forecast.objects.filter(date=day, status=Forecast.Status.DRAFT).count() == 12
        ]

    [day] = wait_for(written, timeout=90, interval=0.5, what="the twelve forecasts of today to be written")
    assert Forecast.objects.filter(date__in=candidates).count() == 12  # one day only, as `day` asks
    return list(Forecast.objects.filter(date=day))


def send_on_time(faults, groups: dict[datetime, list]) -> None:
    """Dispatch at each due instant (the simulated clock); each group's emails arrive before the next minute."""
    sink = faults.sink
    for instant in sorted(groups):
        readers = groups[instant]
        before = len(sink.messages)
        dispatched = clock_now()
        with faults.enqueue():
            assert len(deliveries_dispatch_due(instant).delivery_ids) == len(readers)
        sink.wait_for(before + len(readers), timeout=55)
        arrived = {m.to[0]: m.at for m in sink.messages[before:]}
        assert set(arrived) == {r.user.email for r in readers}
        assert max(arrived.values()) - dispatched < 60  # out before the next dispatch, a minute later
        assert set(Delivery.objects.filter(subscription__in=readers).values_list("due_at", flat=True)) == {instant}


def clock_now() -> float:
    import time as clock

    return clock.time()


def test_llm_hanging_then_down_forecasts_fall_back_to_the_offline_composer_and_emails_go_out_on_time(faults):
    knowledge_load()
    fake = FakeOpenAI().start()
    try:
        # Hanging: every call is held far longer than OPENAI_TIMEOUT.
        fake.default = lambda body: Scripted(hang=10.0, status=500)
        faults.worker(
            "writer",
            concurrency=4,
            OPENAI_API_KEY=dummy_key("sk-test-"),
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_TIMEOUT="1",
            OPENAI_MAX_ATTEMPTS="2",
            OPENAI_BACKOFF="0.05",
            FORECAST_GENERATOR="",  # the default: OpenAI, since a key is set
            RETRIEVAL_BACKEND="forecasts.writing.retrieval.LocalIndex",
        )
        forecasts = prepare_today(faults)
        assert fake.call_count == 24  # two attempts per forecast, no more
    finally:
        fake.stop()  # from now on the endpoint is down: connections are refused
    day = forecasts[0].date
    for forecast in forecasts:
        assert (forecast.generator, forecast.grounded, forecast.attempts) == (Forecast.Generator.OFFLINE, True, 3)
        assert "openai gave no grounded forecast after 2 call(s)" in forecast.fallback_reason
        assert "APITimeoutError" in forecast.fallback_reason
        assert forecast.headline and forecast.sections

    start = datetime.combine(day, time(0), tzinfo=UTC)
    groups: dict[datetime, list] = {}
    for time_zone, sign in [
        ("Europe/Paris", "taurus"),
        ("UTC", "aries"),
        ("America/New_York", "gemini"),
        ("Pacific/Kiritimati", "pisces"),  # 06:00 there is tomorrow: nobody prepared that forecast
    ]:
        readers = add_readers(3, time_zone=time_zone, delivery_time=time(6, 0), sign=sign, scheduled_from=start)
        instant = readers[0].next_send_at
        local_day = instant.astimezone(zone(time_zone)).date()
        assert instant == local_send_instant(local_day, time(6, 0), zone(time_zone))
        groups[instant] = readers
    send_on_time(faults, groups)

    everyone = [reader for readers in groups.values() for reader in readers]
    assert_one_email_each(faults.sink, everyone)
    # The send path wrote tomorrow's Pisces forecast itself, offline (it never waits on a model
    # while holding claimed deliveries), and said why.
    tomorrow = Forecast.objects.get(date=day + timedelta(days=1), sign="pisces")
    assert tomorrow.generator == Forecast.Generator.OFFLINE and tomorrow.status == Forecast.Status.DRAFT
    assert "written at send time: no prepared forecast" in tomorrow.fallback_reason
    by_delivery = {int(m.header("X-Horoscope-Delivery")): m for m in faults.sink.messages}
    for delivery in Delivery.objects.filter(subscription__in=everyone).select_related("forecast"):
        assert delivery.forecast.generator == Forecast.Generator.OFFLINE
        assert delivery.forecast.headline in by_delivery[delivery.pk].header("Subject")
    assert statuses(everyone) == {Delivery.Status.SENT: 12}


def test_pinecone_unreachable_generation_uses_the_local_index_says_so_and_emails_go_out(faults):
    knowledge_load()
    closed = free_port()  # nothing listens there: every connection is refused
    # Query embeddings and the readings both come from OpenAI's API, served on loopback: passages
    # are retrieved for a model (the offline composer writes from its phrasebook).
    with FakeOpenAI() as embeddings:
        embeddings.default = grounded_answer
        faults.worker(
            "writer",
            concurrency=2,
            RETRIEVAL_BACKEND="forecasts.writing.retrieval.PineconeIndex",
            PINECONE_API_KEY=dummy_key("pcsk_test_"),
            PINECONE_HOST=f"http://127.0.0.1:{closed}",
            PINECONE_EMBEDDINGS="openai",
            PINECONE_TIMEOUT="2",
            PINECONE_MAX_RETRIES="0",
            OPENAI_API_KEY=dummy_key("sk-test-"),
            OPENAI_BASE_URL=embeddings.base_url,
            OPENAI_EMBED_DIMENSION="64",
            FORECAST_GENERATOR=OPENAI,
        )
        forecasts = prepare_today(faults)
        assert embeddings.embedding_calls  # the query was embedded: the failure was Pinecone's
    for forecast in forecasts:
        assert forecast.generator == Forecast.Generator.OPENAI and forecast.grounded
        assert "retrieval: pinecone unavailable" in forecast.fallback_reason
        assert "Connection refused" in forecast.fallback_reason
        assert "passages came from the local index" in forecast.fallback_reason
        assert forecast.passages.exists()  # the local index answered instead

    day = forecasts[0].date
    readers = add_readers(
        12, time_zone="UTC", delivery_time=time(6, 0), sign="virgo", scheduled_from=datetime.combine(day, time(0), UTC)
    )
    send_on_time(faults, {datetime.combine(day, time(6, 0), UTC): readers})
    assert_one_email_each(faults.sink, readers)
    virgo = Forecast.objects.get(date=day, sign="virgo")
    assert {m.header("Subject") for m in faults.sink.messages} == {
        f"Virgo, {day:%A} {day.day} {day:%B}: {virgo.headline}"
    }
