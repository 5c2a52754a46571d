"""Delivery's SES message id and forecast are indexed only where set, and the lookups by them still
use those indexes (PostgreSQL must prove each query's rows lie within the index's condition)."""

import pytest
from django.db import connection

from forecasts.models import Delivery

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
