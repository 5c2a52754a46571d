"""The broker (Redis, also the cache and the shared send rate) restarts in the middle of a send.

It comes back empty (no persistence): every task message is gone. The database still says what
is queued, so beat's stale sweep hands it to the workers again, and nothing is lost or doubled.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from devtools.servers import wait_for
from forecasts.models import Delivery
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.upkeep import deliveries_requeue_stale
from tests.faults.conftest import RedisServer, assert_one_email_each, readers_due_now, statuses

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_broker_restart_mid_send_loses_nothing_and_doubles_nothing(faults, settings, artifacts_dir):
    server = RedisServer(artifacts_dir / "faults-broker-restart-redis.log").start()
    try:
        faults.broker_url, faults.cache_url = server.url(0), server.url(1)
        settings.SEND_BATCH_SIZE = 10
        sink = faults.sink
        sink.latency = 0.05
        readers, due = readers_due_now(80)
        for name in ("w1", "w2"):
            faults.worker(name, concurrency=2)
        with faults.enqueue():
            assert len(deliveries_dispatch_due(due + timedelta(seconds=30)).delivery_ids) == 80

        sink.wait_for(20, timeout=60)
        server.stop()  # mid-send: workers lose the broker, the cache and the send-rate window
        stopped_with = len(sink.messages)
        server.start()  # same port, empty
        assert stopped_with < 80
        assert faults.queued() == 0 and not faults.unacked()  # every task message is gone

        # Beat's stale sweep (every few minutes in production; its clock is moved on here).
        def all_sent() -> bool:
            if statuses(readers) == {Delivery.Status.SENT: 80}:
                return True
            with faults.enqueue():
                deliveries_requeue_stale(timezone.now() + timedelta(minutes=11))
            return False

        wait_for(all_sent, timeout=90, interval=3, what="every delivery to be sent after the restart")
        faults.wait_broker_drained()
        assert_one_email_each(sink, readers)
    finally:
        faults.stop()
        server.stop()
