"""SES answers "slow down" to 30% of SendEmail calls and enforces its maximum rate, with two workers."""

from datetime import timedelta

import pytest

from devtools.servers import wait_for
from forecasts.models import Delivery
from forecasts.sending.dispatch import deliveries_dispatch_due
from tests.faults.conftest import MAX_SEND_RATE, assert_one_email_each, readers_due_now, statuses

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_with_30_percent_throttling_everything_is_sent_once_and_the_rate_is_never_exceeded(faults, settings):
    sink = faults.sink
    # Like SES: a random 30% are told to slow down, and any call over the maximum rate in the
    # last second is refused with "Maximum sending rate exceeded".
    sink.set_throttle(0.3)
    sink.enforce_rate = True
    settings.SEND_BATCH_SIZE = 5
    readers, due = readers_due_now(80)
    for name in ("w1", "w2"):
        faults.worker(name, concurrency=2)
    with faults.enqueue():
        assert len(deliveries_dispatch_due(due + timedelta(seconds=30)).delivery_ids) == 80

    sink.wait_for(80, timeout=90)
    faults.wait_broker_drained(timeout=90)
    wait_for(lambda: statuses(readers) == {Delivery.Status.SENT: 80}, timeout=30, what="all 80 recorded as sent")
    assert_one_email_each(sink, readers)

    calls = sink.send_calls()
    throttled = [call for call in calls if call.status == 429]
    assert len(throttled) >= 15  # about 30% of the calls really were throttled
    assert len(calls) == 80 + len(throttled)  # every other call was accepted: none failed, none lost
    # Four processes on two workers never went over SES's rate, counting the throttled calls too:
    assert sink.max_in_window(1.0, accepted_only=False) <= MAX_SEND_RATE
    assert not [call for call in calls if call.error == "Throttling"]  # SES's own rate check never fired
