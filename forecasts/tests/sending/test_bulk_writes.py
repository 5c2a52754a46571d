"""The send path's bulk writes: `update_rows` and dispatch's one-statement insert of deliveries."""

from datetime import UTC, date, datetime

import pytest

from forecasts.models import Delivery
from forecasts.sending.bulk import update_rows
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.tests.factories import add_readers

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_update_rows_writes_each_rows_own_values_and_skips_rows_that_moved_on():
    readers = add_readers(3)
    rows = [
        Delivery.objects.create(subscription=reader, local_date=date(2025, 3, 9), due_at=at("2025-03-09T05:00Z"))
        for reader in readers
    ]
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(status=Delivery.Status.SENDING)
    Delivery.objects.filter(pk=rows[2].pk).update(status=Delivery.Status.DELIVERED)  # an SES event came first
    sent_at = at("2025-03-09T05:00:30Z")
    for number, row in enumerate(rows):
        row.status, row.ses_message_id, row.sent_at = Delivery.Status.SENT, f"message-{number}", sent_at

    update_rows(Delivery, rows, ["status", "ses_message_id", "sent_at"], only_status=Delivery.Status.SENDING)

    stored = {d.pk: d for d in Delivery.objects.all()}
    assert [(stored[r.pk].status, stored[r.pk].ses_message_id, stored[r.pk].sent_at) for r in rows[:2]] == [
        (Delivery.Status.SENT, "message-0", sent_at),
        (Delivery.Status.SENT, "message-1", sent_at),
    ]
    assert (stored[rows[2].pk].status, stored[rows[2].pk].ses_message_id) == (Delivery.Status.DELIVERED, "")


def test_update_rows_writes_nulls_and_accepts_nothing_to_write():
    (reader,) = add_readers(1, scheduled_from=at("2025-03-09T04:00Z"))
    reader.next_send_at, reader.last_local_date = None, None
    update_rows(type(reader), [reader], ["next_send_at", "last_local_date"])
    update_rows(type(reader), [], ["next_send_at"])
    reader.refresh_from_db()
    assert (reader.next_send_at, reader.last_local_date) == (None, None)


def test_dispatch_queues_an_existing_delivery_again_instead_of_making_a_second():
    readers = add_readers(2, scheduled_from=at("2025-03-09T04:00Z"))
    # A delivery for the first reader's date exists already (made before last_local_date was kept).
    existing = Delivery.objects.create(
        subscription=readers[0], local_date=date(2025, 3, 9), due_at=at("2025-03-09T05:00Z")
    )

    result = deliveries_dispatch_due(at("2025-03-09T05:00Z"), enqueue=False)

    assert result.claimed == 2
    assert Delivery.objects.count() == 2
    made = Delivery.objects.get(subscription=readers[1])
    assert sorted(result.delivery_ids) == sorted([existing.pk, made.pk])
    assert (made.local_date, made.due_at, made.status, made.attempts, made.error) == (
        date(2025, 3, 9),
        at("2025-03-09T05:00Z"),
        Delivery.Status.QUEUED,
        0,
        "",
    )
    assert made.queued_at is not None and made.updated_at is not None
