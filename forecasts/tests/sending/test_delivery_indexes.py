"""Delivery's SES message id and forecast are indexed only where set, and the lookups by them still
use those indexes (PostgreSQL must prove each query's rows lie within the index's condition).
The dispatcher's rows are in no index that no lookup of them uses."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from accounts.models import Subscription
from forecasts.models import Delivery
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.tests.factories import add_readers

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("rows", "index"),
    [
        # An SES event finds its email (forecasts/sending/ses_events.py).
        (lambda: Delivery.objects.filter(ses_message_id="0100018c-ses-id").order_by(), "delivery_ses_message_idx"),
        # Deleting a forecast unlinks its deliveries (on_delete=SET_NULL).
        (lambda: Delivery.objects.filter(forecast_id__in=[3, 4]), "delivery_forecast_idx"),
    ],
)
def test_lookups_by_a_value_that_is_set_use_the_partial_index(rows, index):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is empty: ask whether the index can serve
        plan = rows().explain()
    assert index in plan, plan


def _indexes_holding(table: str, pk: int) -> set[str]:
    """The indexes of `table` with an entry for row `pk`: every index without a condition, and
    each partial one whose condition the row meets (PostgreSQL evaluates it on the row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
            [table],
        )
        holding = set()
        for name, condition in cursor.fetchall():
            if condition is not None:
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = %s AND ({condition}))", [pk])  # noqa: S608
                if not cursor.fetchone()[0]:
                    continue
            holding.add(name)
    return holding


def test_dispatch_writes_no_index_entry_that_no_lookup_of_its_rows_uses():
    """The dispatcher rewrites every due reader's row (next_send_at is indexed, so each update
    writes a new entry in every index holding the row) and inserts a queued delivery. Each index
    holding those rows costs it time per reader; these are the ones it needs."""
    (reader,) = add_readers(scheduled_from=datetime(2025, 3, 9, 4, tzinfo=UTC))
    deliveries_dispatch_due(datetime(2025, 3, 9, 7, tzinfo=UTC), enqueue=False)
    delivery = Delivery.objects.get()

    assert _indexes_holding("accounts_subscription", reader.pk) == {
        "accounts_subscription_pkey",
        "accounts_subscription_user_id_key",  # one subscription per user
        "subscription_due_idx",  # the dispatcher's claim
    }
    assert _indexes_holding("forecasts_delivery", delivery.pk) == {
        "forecasts_delivery_pkey",
        "delivery_unique_subscription_date",  # one email per reader and date
        "delivery_status_queued_idx",  # stale queued deliveries are requeued
        "delivery_date_status_idx",  # a day's deliveries by status
    }


@pytest.mark.parametrize("status", ["pending", "paused", "unsubscribed", "suppressed"])
def test_the_admin_filter_by_a_status_other_than_active_uses_an_index(status):
    rows = Subscription.objects.filter(status=status, sign="aries")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = rows.explain()
    assert "subscription_inactive_idx" in plan, plan
