"""SIGTERM to a worker's whole process group while it sends, as ECS stops a task (and a shell or
tini as PID 1 passes the signal to every process): the worker ends well within the 120 s stop
timeout the deploy sets, hands back what it had not sent (acks_late), and every reader gets
exactly one email.

Before, each pool child took SIGTERM's default action and died mid-send: its claimed chunk was
stranded in "sending" and the parent's warm shutdown waited on batches whose process was gone.
"""

import signal
import time as clock
from datetime import timedelta

import pytest

from devtools.servers import wait_for
from forecasts.models import Delivery
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.tasks import deliveries_dispatch_due_task
from tests.faults.conftest import (
    assert_one_email_each,
    emails_by_reader,
    every_minute_until,
    readers_due_now,
    record_measure,
    statuses,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STOP_TIMEOUT_S = 120  # the ECS stop timeout deploy/ sets for workers
SHUTDOWN_AIM_S = 20  # what it really takes: one email in flight, then the warm shutdown
AS_IN_PRODUCTION = {"CELERY_VISIBILITY_TIMEOUT": "900", "SEND_BATCH_SIZE": "50"}


def test_sigterm_to_the_process_group_mid_send_ends_the_worker_soon_and_each_reader_gets_one_email(
    faults, artifacts_dir
):
    sink = faults.sink
    readers, due = readers_due_now(300)
    stopping = faults.worker("stopping", concurrency=2, **AS_IN_PRODUCTION)
    with faults.enqueue():
        assert len(deliveries_dispatch_due(due + timedelta(seconds=30)).delivery_ids) == 300
    wait_for(lambda: len(sink.messages) >= 40, timeout=60, interval=0.05, what="the worker to be sending")

    stopping.kill(signal.SIGTERM)  # the whole process group
    signalled = clock.monotonic()
    stopping.process.wait(timeout=STOP_TIMEOUT_S)
    stopped_s = clock.monotonic() - signalled
    at_stop = statuses(readers)

    assert stopping.process.returncode == 0, stopping.log()[-3000:]
    assert stopped_s < SHUTDOWN_AIM_S
    assert "WorkerLostError" not in stopping.log()
    # Nothing stranded: what was handed to SES is recorded, the rest is back in the queue.
    assert Delivery.Status.SENDING not in at_stop and at_stop[Delivery.Status.QUEUED] > 0
    assert at_stop[Delivery.Status.SENT] == len(sink.messages)

    # The replacement takes the handed-back batches from the broker; the dispatch recovers the rest.
    faults.worker("replacement", concurrency=2, **AS_IN_PRODUCTION)
    with faults.enqueue():
        finished_s = every_minute_until(
            deliveries_dispatch_due_task.delay, lambda: set(statuses(readers)) == {Delivery.Status.SENT}, 180
        )
    assert max(emails_by_reader(sink).values()) == 1
    assert_one_email_each(sink, readers)
    record_measure(
        artifacts_dir,
        "postgresql+redis, SIGTERM to the worker's process group",
        {"stopped_s": round(stopped_s, 1), "all_sent_after_replacement_s": round(finished_s, 1), **at_stop},
    )
