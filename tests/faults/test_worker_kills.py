"""kill -9 of the worker at three points of a day's send; afterwards every reader has exactly one email.

1. after dispatch, before any email: the tasks sit in the broker or in the dead worker's hands;
   the broker redelivers them (acks_late + visibility timeout) and they are sent once.
2. in the middle of a batch: sent emails are recorded, one claimed chunk is left "sending", the rest
   is queued. The redelivered task sends the queued rest; the stranded chunk turns "unknown" and is
   never resent by itself. SES's own events settle it: what SES accepted becomes "sent" (the Send
   event names the delivery), and what it never received is what the operator resends, once.
3. after every email of a batch reached SES but before the results were written or the task
   acknowledged: the redelivered task finds nothing to send; SES's events record the truth.

And measured, with the production timings (heartbeat, visibility timeout, beat's minute): a kill -9
of a worker's pool children, its main process or both, in the middle of 300 readers, while
another worker lives on. The next dispatches find what the lost one held and recover it, with
SES's Send events deciding what reached SES: every reader has exactly one email within 3 minutes.
"""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time as clock
from collections import Counter
from contextlib import closing
from datetime import timedelta
from email import message_from_bytes

import pytest
from django.utils import timezone

from devtools.servers import REPO_ROOT, base_child_env, celery_worker, wait_for
from forecasts.models import Delivery
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.send import CLAIM_CHUNK
from forecasts.sending.upkeep import deliveries_requeue_stale
from forecasts.tasks import deliveries_dispatch_due_task
from tests.faults.conftest import (
    admin_resend,
    assert_one_email_each,
    child_pids,
    emails_by_reader,
    every_minute_until,
    readers_due_now,
    record_measure,
    statuses,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def later(minutes: int):
    """The clock of a beat run `minutes` from now (the stale and stuck sweeps measure ages)."""
    return timezone.now() + timedelta(minutes=minutes)


def test_killed_after_dispatch_before_sending_the_broker_redelivers_and_each_reader_gets_one(faults, settings):
    settings.SEND_BATCH_SIZE = 5
    readers, due = readers_due_now(30)
    doomed = faults.worker("doomed", concurrency=2)
    # Freeze its pool: the main process still takes tasks from the broker and hands them to the
    # children, which cannot run them. The kill -9 below lands at exactly this point.
    children = child_pids(doomed.pid)
    assert len(children) == 2
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    with faults.enqueue():
        result = deliveries_dispatch_due(due + timedelta(seconds=30))
    assert len(result.delivery_ids) == 30
    wait_for(lambda: len(faults.unacked()) == 2, timeout=20, what="the doomed worker to reserve two tasks")
    doomed.kill(signal.SIGKILL)
    doomed.process.wait(timeout=10)

    assert faults.sink.messages == []
    assert statuses(readers) == {Delivery.Status.QUEUED: 30}
    assert faults.queued() == 4 and len(faults.unacked()) == 2  # 6 batches: 4 waiting, 2 held by the dead worker

    faults.wait_until_redeliverable()
    faults.worker("rescuer", concurrency=2)
    faults.sink.wait_for(30, timeout=60)
    faults.wait_broker_drained()
    wait_for(lambda: statuses(readers) == {Delivery.Status.SENT: 30}, timeout=20, what="all 30 recorded as sent")

    assert_one_email_each(faults.sink, readers)
    assert set(Delivery.objects.filter(subscription__in=readers).values_list("attempts", flat=True)) == {1}
    report = deliveries_requeue_stale(later(31))
    assert (report.requeued, report.stuck, report.expired) == (0, 0, 0)  # nothing left behind


def test_killed_mid_batch_the_rest_is_redelivered_and_the_stranded_chunk_is_settled_by_ses_events_and_the_operator(
    faults, ses_events_stream, admin_client
):
    sink = faults.sink
    readers, due = readers_due_now(60)
    sink.latency = 0.2  # each SendEmail takes a while: the kill lands mid-batch
    doomed = faults.worker("doomed", concurrency=1)
    with faults.enqueue():
        assert len(deliveries_dispatch_due(due + timedelta(seconds=30)).delivery_ids) == 60  # one task
    sink.wait_for(CLAIM_CHUNK + 5, timeout=60)  # into its second claimed chunk
    doomed.kill(signal.SIGKILL)
    doomed.process.wait(timeout=10)
    sink.latency = 0.0

    at_kill = statuses(readers)
    stranded = at_kill[Delivery.Status.SENDING]
    assert 0 < stranded <= CLAIM_CHUNK  # one claimed chunk at most
    assert at_kill[Delivery.Status.QUEUED] >= 60 - 2 * CLAIM_CHUNK  # never claimed: safe to send later
    assert at_kill[Delivery.Status.SENT] + stranded + at_kill[Delivery.Status.QUEUED] == 60

    # The broker gives the unacknowledged task to another worker, which sends only what is still queued.
    faults.wait_until_redeliverable()
    faults.worker("rescuer", concurrency=2)
    wait_for(lambda: not statuses(readers)[Delivery.Status.QUEUED], timeout=60, what="the queued rest to be sent")
    faults.wait_broker_drained()
    assert max(emails_by_reader(sink).values()) == 1  # the redelivery mailed nobody twice

    # Beat's stuck sweep, half an hour on: what the dead worker held becomes unknown, and stays unsent.
    report = deliveries_requeue_stale(later(31))
    assert report.stuck == stranded and report.requeued == 0
    unknown = Delivery.objects.filter(subscription__in=readers, status=Delivery.Status.UNKNOWN)
    assert unknown.count() == stranded

    # SES publishes a Send event for every message it accepted. Those name their delivery (by the
    # X-Horoscope-Delivery header): SES has it, so it is sent, and must never be resent.
    ses_events_stream.publish("Send", sink.messages)
    received = set(emails_by_reader(sink))
    still_unknown = set(unknown.values_list("subscription__user__email", flat=True))
    never_arrived = {r.user.email for r in readers} - received
    assert still_unknown == never_arrived  # unknown now means exactly: SES never got it
    assert 0 < len(still_unknown) < stranded  # the kill left both kinds in the chunk

    # The operator resends those from the admin, once.
    ids = list(unknown.values_list("id", flat=True))
    with faults.enqueue():
        page = admin_resend(admin_client, ids)
    assert f"{len(ids)} deliveries put back in the queue" in page
    sink.wait_for(60, timeout=30)
    faults.wait_broker_drained()
    wait_for(
        lambda: set(statuses(readers)) == {Delivery.Status.SENT},
        timeout=20,
        what="every delivery to be recorded as sent",
    )
    assert_one_email_each(sink, readers)

    # Later, SES's Delivery events mark every one of them delivered.
    ses_events_stream.publish("Delivery", sink.messages)
    assert statuses(readers) == {Delivery.Status.DELIVERED: 60}


def test_killed_after_sending_before_recording_the_redelivered_task_sends_nothing_again(faults, ses_events_stream):
    sink = faults.sink
    warm, warm_due = readers_due_now(1, minutes_ago=6)
    readers, due = readers_due_now(10)
    doomed = faults.worker("doomed", concurrency=1)
    with faults.enqueue():
        deliveries_dispatch_due(warm_due + timedelta(seconds=30))  # warms the worker's one process up
    sink.wait_for(1, timeout=30)
    wait_for(lambda: statuses(warm) == {Delivery.Status.SENT: 1}, timeout=20, what="the warm-up to be recorded")

    # Every SendEmail is answered a little late: once the sink has the tenth message, the worker
    # is waiting for SES's answer to it, and has recorded none of the ten (results are written
    # together at the end of the claimed chunk). That is where the kill -9 lands.
    sink.latency = 0.1
    with faults.enqueue():
        assert len(deliveries_dispatch_due(due + timedelta(seconds=30)).delivery_ids) == 10
    sink.wait_for(11, timeout=30)
    doomed.kill(signal.SIGKILL)
    doomed.process.wait(timeout=10)
    sink.latency = 0.0
    assert len(sink.messages) == 11  # all ten reached SES ...
    assert statuses(readers) == {Delivery.Status.SENDING: 10}  # ... and not one was recorded
    assert len(faults.unacked()) == 1  # nor was the task acknowledged

    faults.wait_until_redeliverable()
    faults.worker("rescuer", concurrency=1)
    faults.wait_broker_drained()  # the redelivered task ran and was acknowledged ...
    assert len(sink.messages) == 11  # ... and sent nothing again
    assert statuses(readers) == {Delivery.Status.SENDING: 10}

    assert deliveries_requeue_stale(later(31)).stuck == 10
    assert statuses(readers) == {Delivery.Status.UNKNOWN: 10}
    ses_events_stream.publish("Send", sink.messages)
    assert statuses(readers) == {Delivery.Status.SENT: 10}  # nothing left for the operator
    assert_one_email_each(sink, readers + warm)


# Production's timings, not the suite's short visibility timeout: the broker hands nothing back in
# the test's time, so what is recovered, the recovery did. SES publishes Send events.
AS_IN_PRODUCTION = {"CELERY_VISIBILITY_TIMEOUT": "900", "SES_SEND_EVENTS": "true", "SEND_BATCH_SIZE": "50"}
RECOVERY_AIM_S = 180


def kill_9(worker, which: str) -> None:
    if which == "children":
        for pid in child_pids(worker.pid):
            os.kill(pid, signal.SIGKILL)
    elif which == "parent":
        os.kill(worker.pid, signal.SIGKILL)  # Linux then kills its pool too (Celery sets PR_SET_PDEATHSIG)
    else:
        worker.kill(signal.SIGKILL)  # the whole process group


@pytest.mark.parametrize("which", ["children", "parent", "both"])
def test_kill_9_amid_300_readers_every_reader_has_one_email_within_3_minutes(
    faults, ses_events_stream, artifacts_dir, which
):
    sink = faults.sink
    readers, due = readers_due_now(300)
    doomed = faults.worker("doomed", concurrency=2, **AS_IN_PRODUCTION)
    faults.worker("survivor", concurrency=2, **AS_IN_PRODUCTION)
    doomed_holds = Delivery.objects.filter(subscription__in=readers, held_by__startswith="doomed@")
    try:
        with ses_events_stream.following(sink), faults.enqueue():
            assert len(deliveries_dispatch_due(due + timedelta(seconds=30)).delivery_ids) == 300
            wait_for(
                lambda: len(sink.messages) >= 30 and doomed_holds.filter(status=Delivery.Status.SENDING).exists(),
                timeout=60,
                interval=0.05,
                what="the doomed worker to be sending",
            )
            kill_9(doomed, which)
            killed_at = clock.monotonic()
            at_kill = statuses(readers)
            held = doomed_holds.count()

            def everyone_has_theirs() -> bool:
                return len(emails_by_reader(sink)) == 300

            emailed_s = every_minute_until(deliveries_dispatch_due_task.delay, everyone_has_theirs, RECOVERY_AIM_S)
            # Recorded too: sent by a worker, or settled by SES's Send event.
            every_minute_until(
                deliveries_dispatch_due_task.delay,
                lambda: set(statuses(readers)) == {Delivery.Status.SENT},
                RECOVERY_AIM_S - (clock.monotonic() - killed_at),
            )
            recorded_s = clock.monotonic() - killed_at
    finally:
        if which == "parent":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(doomed.pid, signal.SIGKILL)  # any process of its group still there
    assert max(emails_by_reader(sink).values()) == 1
    assert_one_email_each(sink, readers)
    assert at_kill[Delivery.Status.SENT] < 300 and held > 0  # the kill did land mid-send
    record_measure(
        artifacts_dir,
        f"postgresql+redis, kill -9 of {which}",
        {"emailed_s": round(emailed_s, 1), "recorded_s": round(recorded_s, 1), "held_at_kill": held, **at_kill},
    )


# --- the same on `make run`'s stack: SQLite, the file-system broker, the outbox ---------------------

SQLITE_READERS = """
from datetime import timedelta
from django.utils import timezone
from forecasts.tests.factories import add_readers
from forecasts.tests.sending.test_daily_send_workers import forecasts_for_days
due = (timezone.now() - timedelta(minutes=1)).replace(second=0, microsecond=0)
forecasts_for_days(due.date() - timedelta(days=1), 3)
add_readers(300, time_zone="UTC", delivery_time=due.time(), sign="leo", scheduled_from=due - timedelta(hours=1))
"""
BEAT_DISPATCH = "from forecasts.tasks import deliveries_dispatch_due_task; deliveries_dispatch_due_task.delay()"


class LocalSite:
    """`make run`'s layout in a folder: a SQLite file, var/broker, the outbox; read without Django."""

    def __init__(self, root) -> None:
        self.db = root / "db.sqlite3"
        self.outbox = root / "outbox"
        self.env = {
            "DATABASE_URL": f"sqlite:///{self.db}",
            "EMAIL_BACKEND": "forecasts.sending.outbox.OutboxEmailBackend",
            "EMAIL_OUTBOX_DIR": str(self.outbox),
            "VAR_DIR": str(root / "var"),
            "SES_MAX_SEND_RATE": "20",  # the shared rate, in the database here: the kill lands mid-send
            "SEND_BATCH_SIZE": "50",
        }
        self._recipients: dict[str, str] = {}

    def child_env(self) -> dict[str, str]:
        env = base_child_env(**self.env)
        for name in ("CELERY_BROKER_URL", "REDIS_URL"):  # the file-system broker, the database's rate
            env.pop(name, None)
        return env

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def query(self, sql: str) -> list[tuple]:
        with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)) as db:
            return db.execute(sql).fetchall()

    def statuses(self) -> Counter:
        return Counter(dict(self.query("SELECT status, count(*) FROM forecasts_delivery GROUP BY status")))

    def emails_by_reader(self) -> Counter:
        for path in self.outbox.glob("*.eml"):
            if path.name not in self._recipients:
                self._recipients[path.name] = message_from_bytes(path.read_bytes())["To"]
        return Counter(self._recipients.values())


@pytest.mark.parametrize("which", ["children", "parent", "both"])
def test_kill_9_amid_300_readers_on_sqlite_and_the_file_broker_every_reader_has_one_email_within_3_minutes(
    tmp_path, artifacts_dir, which
):
    site = LocalSite(tmp_path)
    site.manage("migrate", "--verbosity", "0")
    site.manage("shell", "--command", SQLITE_READERS)
    workers = []
    try:
        for name in ("doomed", "survivor"):
            log = artifacts_dir / f"faults-sqlite-{which}-{name}.log"
            log.unlink(missing_ok=True)
            workers.append(celery_worker(site.child_env(), log, name=name, concurrency=2))
        doomed = workers[0]
        for worker in workers:
            wait_for(lambda w=worker: "ready" in w.log(), timeout=90, what="a worker to start")
        assert "claimed 300 due subscriptions, queued 300 deliveries" in site.manage("dispatch_due")
        doomed_sending = "SELECT count(*) FROM forecasts_delivery WHERE held_by LIKE 'doomed@%' AND status = 'sending'"
        wait_for(
            lambda: len(site.emails_by_reader()) >= 30 and site.query(doomed_sending)[0][0] > 0,
            timeout=90,
            interval=0.05,
            what="the doomed worker to be sending",
        )
        kill_9(doomed, which)
        killed_at = clock.monotonic()
        at_kill = site.statuses()
        emailed_s = every_minute_until(
            lambda: site.manage("shell", "--command", BEAT_DISPATCH),
            lambda: len(site.emails_by_reader()) == 300,
            RECOVERY_AIM_S,
        )
        every_minute_until(
            lambda: site.manage("shell", "--command", BEAT_DISPATCH),
            lambda: set(site.statuses()) == {"sent"},
            RECOVERY_AIM_S - (clock.monotonic() - killed_at),
        )
        recorded_s = clock.monotonic() - killed_at
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
    received = site.emails_by_reader()
    assert len(received) == 300 and max(received.values()) == 1
    assert site.statuses() == {"sent": 300}
    assert at_kill["sent"] < 300
    record_measure(
        artifacts_dir,
        f"sqlite+file broker, kill -9 of {which}",
        {"emailed_s": round(emailed_s, 1), "recorded_s": round(recorded_s, 1), **at_kill},
    )
