"""The dispatcher's database connection is dropped in the middle of a run (pg_terminate_backend).

The dispatch task runs on a real worker, as beat runs it every minute, in chunks of 20
subscriptions, each its own transaction. The connection is cut while the second chunk is
inside its transaction: the first chunk is committed and its emails go out, the second is
rolled back whole. The next run reconnects and dispatches the rest: one Delivery and one email
per reader, none twice.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Subscription
from devtools.servers import wait_for
from forecasts.models import Delivery
from forecasts.tasks import deliveries_dispatch_due_task
from tests.faults.conftest import assert_one_email_each, holder_blocks, raw_connection, readers_due_now, statuses

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHUNK = 20


def test_a_dropped_connection_mid_dispatch_is_recovered_by_the_next_run_without_duplicates(faults):
    sink = faults.sink
    readers, due = readers_due_now(100)
    # Distinct due instants fix the order in which the dispatcher claims them (next_send_at order).
    for position, reader in enumerate(readers):
        reader.next_send_at = due - timedelta(seconds=len(readers) - position)
    Subscription.objects.bulk_update(readers, ["next_send_at"])
    first_chunk, rest = readers[:CHUNK], readers[CHUNK:]
    # One connection, so the chunks are claimed in order and the second one is the one cut off.
    faults.worker("dispatcher", concurrency=1, DISPATCH_CHUNK_SIZE=str(CHUNK), DISPATCH_CONNECTIONS="1")

    holder = raw_connection(autocommit=False)
    try:
        # An uncommitted row with the same (subscription, date) as one of the second chunk's: the
        # dispatcher's INSERT ... ON CONFLICT waits for it, inside the second chunk's transaction.
        now = timezone.now()
        holder.execute(
            "INSERT INTO forecasts_delivery (subscription_id, local_date, due_at, status, error, attempts,"
            " ses_message_id, queued_at, updated_at) VALUES (%s, %s, %s, 'queued', '', 0, '', %s, %s)",
            [rest[0].pk, due.date(), due, now, now],
        )
        with faults.enqueue():
            deliveries_dispatch_due_task.delay()  # beat's run of this minute
        dispatcher = wait_for(lambda: holder_blocks(holder), timeout=30, what="the dispatcher to reach chunk two")
        with raw_connection() as admin:
            query = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [dispatcher]).fetchone()[0]
            # The chunk's one write (readers advanced, deliveries inserted), inside its transaction;
            # pg_stat_activity keeps only the first kilobyte of it.
            assert query.lstrip().startswith("WITH outcome AS")
            # The first chunk is committed; now the connection goes.
            assert Delivery.objects.filter(subscription__in=readers).count() == CHUNK
            assert admin.execute("SELECT pg_terminate_backend(%s)", [dispatcher]).fetchone()[0] is True
    finally:
        holder.rollback()
        holder.close()

    # The second chunk's transaction was rolled back whole: its readers are untouched, still due.
    assert statuses(first_chunk) == statuses(readers) and sum(statuses(first_chunk).values()) == CHUNK
    untouched = Subscription.objects.filter(pk__in=[r.pk for r in rest])
    assert not untouched.filter(last_local_date__isnull=False).exists()
    assert untouched.filter(next_send_at__lte=due).count() == len(rest)
    sink.wait_for(CHUNK, timeout=30)  # the first chunk's emails went out

    with faults.enqueue():
        deliveries_dispatch_due_task.delay()  # the next minute's run, on the same worker process
    sink.wait_for(len(readers), timeout=60)
    wait_for(lambda: statuses(readers) == {Delivery.Status.SENT: 100}, timeout=30, what="all 100 recorded as sent")

    with faults.enqueue():
        deliveries_dispatch_due_task.delay()  # and one more: nothing is left to dispatch
    faults.wait_broker_drained()
    assert Delivery.objects.filter(subscription__in=readers).count() == len(readers)
    assert_one_email_each(sink, readers)
    assert not Subscription.objects.filter(pk__in=[r.pk for r in readers], next_send_at__lte=timezone.now()).exists()
