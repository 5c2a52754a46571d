"""Recovery from a lost worker: what it held is found by its name and recovered at the next dispatch.

Real database, real outbox backend; the broker boundary is where tasks are collected
(`enqueue.send_batch`), as in test_send.py. Killed processes and real workers: tests/faults/.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.mail import EmailMessage
from django.utils import timezone

from forecasts.models import Delivery, Forecast, SesEvent
from forecasts.sending import enqueue, holders
from forecasts.sending.delivery_status import STUCK_REASON, deliveries_claim, deliveries_hold
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.heartbeats import heartbeat_record
from forecasts.sending.outbox import OUTBOX_BACKEND, OutboxEmailBackend
from forecasts.sending.recovery import RESENT_REASON, workers_recover_lost
from forecasts.sending.send import deliveries_send
from forecasts.sending.stopping import request_stop
from forecasts.sending.upkeep import deliveries_resend
from forecasts.tests.factories import ForecastFactory, add_readers
from forecasts.writing.generation import forecast_claim

pytestmark = pytest.mark.django_db

WORKER = "doomed@test-host"
START = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
NOON = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def as_worker(settings, monkeypatch):
    """This test process plays a pool child of WORKER, sending through the outbox."""
    settings.EMAIL_BACKEND = OUTBOX_BACKEND
    monkeypatch.setattr(holders, "_worker_name", WORKER)


@pytest.fixture
def enqueued(monkeypatch) -> list[list[int]]:
    batches: list[list[int]] = []
    monkeypatch.setattr(enqueue, "send_batch", batches.append)
    return batches


def queued(count: int) -> list[int]:
    ForecastFactory(date=NOON.date(), sign="leo")
    add_readers(count, scheduled_from=START)
    return sorted(deliveries_dispatch_due(NOON, enqueue=False).delivery_ids)


def mail_through_the_outbox(delivery_ids: list[int]) -> None:
    """What a worker killed before recording did: the outbox accepted these, nothing was written back."""
    backend = OutboxEmailBackend()
    for pk in delivery_ids:
        message = EmailMessage("s", "b", "from@example.test", [f"r{pk}@example.test"])
        message.extra_headers["X-Horoscope-Delivery"] = str(pk)
        assert backend.send_messages([message]) == 1


def by_status(ids) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for pk, status in Delivery.objects.filter(id__in=ids).order_by("id").values_list("id", "status"):
        found.setdefault(status, []).append(pk)
    return found


def test_a_killed_pool_childs_chunk_is_settled_from_the_outboxs_send_records_and_the_rest_sent_again(
    enqueued, django_capture_on_commit_callbacks
):
    ids = queued(6)
    claimed_at = timezone.now() - timedelta(seconds=5)
    assert sorted(deliveries_claim(ids[:4], claimed_at)) == ids[:4]
    mail_through_the_outbox(ids[:2])  # two reached the outbox before the kill
    # The worker lives on and beats: its new child is listed, the one that claimed (us) is not.
    heartbeat_record(WORKER, pids=[1, 2])

    with django_capture_on_commit_callbacks(execute=True):
        report = workers_recover_lost()

    assert report.lost == [holders.this_holder()]
    assert (report.settled_sent, report.resent, report.unknown, report.requeued) == (2, 2, 0, 0)
    assert by_status(ids) == {Delivery.Status.SENT: ids[:2], Delivery.Status.QUEUED: ids[2:]}
    assert enqueued == [ids[2:4]]  # the two never mailed; the never-claimed two are no one's to recover
    sent = Delivery.objects.get(pk=ids[0])
    assert sent.ses_message_id == SesEvent.objects.get(delivery_id=ids[0]).ses_message_id and sent.held_by == ""
    assert set(Delivery.objects.filter(id__in=ids[2:4]).values_list("error", flat=True)) == {RESENT_REASON}

    # Sent once more by a live worker: the reader whose email reached the outbox gets no second one.
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_send(ids).sent == 4
    assert SesEvent.objects.filter(event_type="Send").count() == 6
    assert workers_recover_lost().lost == []


def test_a_claim_newer_than_the_last_beat_is_not_judged_by_it():
    ids = queued(2)
    heartbeat_record(WORKER, now=timezone.now() - timedelta(seconds=1), pids=[1, 2])
    deliveries_claim(ids, timezone.now())  # a child forked after that beat: not listed yet
    assert workers_recover_lost().lost == []
    assert by_status(ids) == {Delivery.Status.SENDING: ids}


def test_a_silent_workers_received_tasks_are_enqueued_again_at_once_and_its_claims_once_they_cannot_be_sending(
    settings, enqueued, django_capture_on_commit_callbacks
):
    ids = queued(5)
    deliveries_hold(ids, WORKER)  # the worker's main process received their task
    just_now = timezone.now() - timedelta(seconds=2)
    assert sorted(deliveries_claim(ids[:2], just_now)) == ids[:2]
    heartbeat_record(WORKER, now=timezone.now() - timedelta(seconds=settings.WORKER_LOST_SECONDS + 1), pids=[1])

    with django_capture_on_commit_callbacks(execute=True):
        report = workers_recover_lost()
    # Queued in its hands: enqueued now. Claimed two seconds ago: it may still be handing them
    # over if it is only cut off, so they wait for the claim's lease.
    assert (report.requeued, report.resent) == (3, 0) and enqueued == [ids[2:]]
    assert by_status(ids) == {Delivery.Status.SENDING: ids[:2], Delivery.Status.QUEUED: ids[2:]}

    later = timezone.now() + timedelta(seconds=settings.SEND_CLAIM_LEASE_SECONDS + 26)
    with django_capture_on_commit_callbacks(execute=True):
        report = workers_recover_lost(later)
    assert (report.requeued, report.resent) == (0, 2) and enqueued[-1] == ids[:2]
    assert by_status(ids) == {Delivery.Status.QUEUED: ids}
    assert set(Delivery.objects.filter(id__in=ids).values_list("held_by", flat=True)) == {""}


def test_with_ses_and_no_send_events_a_lost_workers_claims_become_unknown_at_once_and_are_not_resent(
    settings, enqueued, django_capture_on_commit_callbacks
):
    ids = queued(3)
    deliveries_claim(ids, timezone.now() - timedelta(seconds=10))
    heartbeat_record(WORKER, pids=[1])
    settings.EMAIL_BACKEND = "django_ses.SESBackend"
    settings.SES_SEND_EVENTS = False
    with django_capture_on_commit_callbacks(execute=True):
        report = workers_recover_lost()
    assert (report.unknown, report.resent) == (3, 0) and enqueued == []
    assert set(Delivery.objects.filter(id__in=ids).values_list("status", "error")) == {
        (Delivery.Status.UNKNOWN, STUCK_REASON)
    }


def test_ses_send_events_are_awaited_before_a_lost_childs_claim_is_judged(settings, enqueued):
    ids = queued(1)
    deliveries_claim(ids, timezone.now() - timedelta(seconds=10))
    heartbeat_record(WORKER, pids=[1])
    settings.EMAIL_BACKEND = "django_ses.SESBackend"
    settings.SES_SEND_EVENTS = True
    assert workers_recover_lost().resent == 0  # SES's Send event may still be on its way
    later = timezone.now() + timedelta(seconds=settings.SES_SEND_EVENT_WAIT_SECONDS)
    heartbeat_record(WORKER, now=later, pids=[1])  # the worker beats on
    assert workers_recover_lost(later).resent == 1


def test_a_live_workers_deliveries_are_left_alone():
    ids = queued(3)
    deliveries_hold(ids, WORKER)
    deliveries_claim(ids[:1], timezone.now() - timedelta(minutes=5))
    heartbeat_record(WORKER, pids=[1, holders.os.getpid()])
    assert workers_recover_lost().as_dict()["lost"] == []
    assert by_status(ids) == {Delivery.Status.SENDING: ids[:1], Delivery.Status.QUEUED: ids[1:]}


def test_a_lost_workers_forecast_claim_is_released_and_the_readers_waiting_for_it_enqueued(
    settings, enqueued, django_capture_on_commit_callbacks
):
    ids = queued(2)  # leo's forecast is ready
    add_readers(2, sign="virgo", scheduled_from=START)
    waiting = sorted(deliveries_dispatch_due(NOON, enqueue=False).delivery_ids)
    claim = forecast_claim(NOON.date(), "virgo")
    assert claim.claimed_by == holders.this_holder()
    heartbeat_record(WORKER, now=timezone.now() - timedelta(seconds=settings.WORKER_LOST_SECONDS + 1))

    with django_capture_on_commit_callbacks(execute=True):
        report = workers_recover_lost()

    assert report.forecasts_released == 1 and enqueued == [waiting]
    row = Forecast.objects.get(pk=claim.pk)
    assert (row.status, row.claimed_at, row.claimed_by) == (Forecast.Status.GENERATING, None, "")
    assert forecast_claim(NOON.date(), "virgo") is not None  # at once, not after FORECAST_CLAIM_STALE_MINUTES
    assert not set(waiting) & set(ids)


def test_resending_an_unknown_delivery_the_outbox_accepted_marks_it_sent_and_mails_nobody_twice(
    enqueued, django_capture_on_commit_callbacks
):
    ids = queued(2)
    deliveries_claim(ids, timezone.now())
    mail_through_the_outbox(ids[:1])
    Delivery.objects.filter(id__in=ids).update(status=Delivery.Status.UNKNOWN, error=STUCK_REASON)

    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_resend(ids) == 1
    assert enqueued == [ids[1:]]
    assert by_status(ids) == {Delivery.Status.SENT: ids[:1], Delivery.Status.QUEUED: ids[1:]}


def test_a_send_asked_to_stop_hands_its_whole_batch_back_to_a_new_task(enqueued, monkeypatch):
    from forecasts.sending import stopping

    ids = queued(3)
    monkeypatch.setattr(stopping, "_stop", stopping.threading.Event())
    request_stop()  # what SIGTERM does in a pool child
    report = deliveries_send(ids)
    assert (report.claimed, report.sent) == (0, 0) and enqueued == [ids]
    assert by_status(ids) == {Delivery.Status.QUEUED: ids}
