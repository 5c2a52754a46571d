"""Dispatch: due subscriptions become exactly one Delivery per reader and local date."""

import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Subscription
from accounts.scheduling import local_send_instant, zone
from forecasts.models import Delivery
from forecasts.sending.dispatch import claim_outcome, deliveries_dispatch_due
from forecasts.tests.factories import add_readers
from tests.support.concurrency import at_once

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_dispatch_claims_a_due_subscription_once_and_schedules_the_next_day():
    (reader,) = add_readers(time_zone="Europe/Paris", scheduled_from=at("2025-03-09T04:00Z"))
    assert reader.next_send_at == at("2025-03-09T05:00Z")  # 06:00 in Paris (UTC+1)

    assert deliveries_dispatch_due(at("2025-03-09T04:59Z"), enqueue=False).claimed == 0
    result = deliveries_dispatch_due(at("2025-03-09T05:00Z"), enqueue=False)
    again = deliveries_dispatch_due(at("2025-03-09T05:01Z"), enqueue=False)

    (delivery,) = Delivery.objects.all()
    assert result.claimed == 1 and result.delivery_ids == [delivery.pk]
    assert again.claimed == 0
    assert (delivery.local_date, delivery.due_at, delivery.status) == (
        date(2025, 3, 9),
        at("2025-03-09T05:00Z"),
        Delivery.Status.QUEUED,
    )
    reader.refresh_from_db()
    assert reader.last_local_date == date(2025, 3, 9)
    assert reader.next_send_at == at("2025-03-10T05:00Z")


def test_paused_unsubscribed_suppressed_and_pending_readers_are_never_claimed():
    start = at("2025-03-09T00:00Z")
    for status in ("paused", "unsubscribed", "suppressed", "pending"):
        add_readers(2, status=status, scheduled_from=start)
    add_readers(1, scheduled_from=start)
    result = deliveries_dispatch_due(at("2025-03-09T23:00Z"), enqueue=False)
    assert result.claimed == 1
    assert Delivery.objects.count() == 1


def test_send_batches_are_enqueued_only_after_the_transaction_commits(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.SEND_BATCH_SIZE = 2
    add_readers(5, scheduled_from=at("2025-03-09T00:00Z"))
    batches = []
    from forecasts.sending import enqueue

    monkeypatch.setattr(enqueue, "send_batch", batches.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = deliveries_dispatch_due(at("2025-03-09T06:00Z"))
    assert batches == []  # nothing reaches the broker before the rows are committed
    for callback in callbacks:
        callback()
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert sorted(id_ for batch in batches for id_ in batch) == sorted(result.delivery_ids)


def test_dispatch_query_count_does_not_grow_with_the_number_of_subscribers(settings, django_assert_max_num_queries):
    settings.DISPATCH_CHUNK_SIZE = 5000
    start = at("2025-03-09T00:00Z")

    def queries_for(count: int, delivery_time: time) -> int:
        add_readers(count, time_zone="UTC", delivery_time=delivery_time, scheduled_from=start)
        with CaptureQueriesContext(connection) as captured:
            result = deliveries_dispatch_due(datetime.combine(start.date(), delivery_time, tzinfo=UTC), enqueue=False)
        assert result.claimed == count
        return len(captured)

    few = queries_for(10, time(6, 0))
    many = queries_for(1000, time(7, 0))
    assert few == many
    add_readers(3000, time_zone="UTC", delivery_time=time(8, 0), scheduled_from=start)
    with django_assert_max_num_queries(few):
        assert deliveries_dispatch_due(at("2025-03-09T08:00Z"), enqueue=False).claimed == 3000
    assert Delivery.objects.count() == 4010


def test_a_full_chunk_is_followed_by_the_next_one_in_the_same_run(settings):
    settings.DISPATCH_CHUNK_SIZE = 7
    add_readers(20, scheduled_from=at("2025-03-09T00:00Z"))
    result = deliveries_dispatch_due(at("2025-03-09T06:00Z"), enqueue=False)
    assert (result.claimed, result.chunks, len(result.delivery_ids)) == (20, 3, 20)


def test_after_an_outage_only_the_latest_missed_date_is_sent():
    (reader,) = add_readers(time_zone="Europe/Paris", scheduled_from=at("2025-03-06T00:00Z"))
    # Due 2025-03-06 06:00 Paris, but nothing ran until 2025-03-09 08:00 Paris.
    deliveries_dispatch_due(at("2025-03-09T07:00Z"), enqueue=False)
    assert list(Delivery.objects.values_list("local_date", flat=True)) == [date(2025, 3, 9)]
    reader.refresh_from_db()
    assert reader.next_send_at == at("2025-03-10T05:00Z")


def test_a_date_far_past_its_time_is_skipped_not_sent_late(settings):
    settings.DELIVERY_EXPIRE_HOURS = 6
    (reader,) = add_readers(time_zone="Europe/Paris", scheduled_from=at("2025-03-09T00:00Z"))
    result = deliveries_dispatch_due(at("2025-03-09T23:00Z"), enqueue=False)  # 17 h late
    assert (result.claimed, result.skipped_late, Delivery.objects.count()) == (1, 1, 0)
    reader.refresh_from_db()
    assert reader.last_local_date == date(2025, 3, 9)
    assert reader.next_send_at == at("2025-03-10T05:00Z")


# Spring forward (clocks jump over the delivery time) and fall back (it happens twice).
DST_CASES = [
    ("America/New_York", time(2, 30), "2025-03-08T00:00Z"),  # 02:00 -> 03:00 on 9 March
    ("America/Havana", time(0, 30), "2025-03-08T00:00Z"),  # 00:00 -> 01:00 on 9 March
    ("America/St_Johns", time(2, 15), "2025-03-08T00:00Z"),  # UTC-3:30 -> -2:30
    ("Europe/London", time(1, 30), "2025-03-29T00:00Z"),  # 01:00 -> 02:00 on 30 March
    ("Europe/London", time(1, 30), "2025-10-25T00:00Z"),  # 02:00 -> 01:00 on 26 October
    ("Australia/Sydney", time(2, 30), "2025-04-04T12:00Z"),  # 03:00 -> 02:00 on 6 April
    ("Pacific/Chatham", time(3, 0), "2025-04-04T12:00Z"),  # UTC+13:45 -> +12:45
    ("Pacific/Kiritimati", time(6, 0), "2025-03-08T00:00Z"),  # UTC+14
    ("Pacific/Pago_Pago", time(6, 0), "2025-03-08T00:00Z"),  # UTC-11
]


@pytest.mark.parametrize(("time_zone", "delivery_time", "start"), DST_CASES)
def test_exactly_one_delivery_per_local_date_across_daylight_saving_changes(time_zone, delivery_time, start):
    start = at(start)
    add_readers(time_zone=time_zone, delivery_time=delivery_time, scheduled_from=start)
    end = start + timedelta(hours=72)
    now = start
    while now <= end:
        deliveries_dispatch_due(now, enqueue=False)
        now += timedelta(minutes=15)

    got = list(Delivery.objects.order_by("local_date").values_list("local_date", "due_at"))
    tz = zone(time_zone)
    expected = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    while day <= end.astimezone(tz).date() + timedelta(days=1):
        instant = local_send_instant(day, delivery_time, tz)
        if start < instant <= end:
            expected.append((day, instant))
        day += timedelta(days=1)
    assert got == expected
    assert len(got) == 3


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_never_claim_a_subscription_twice(settings):
    settings.DISPATCH_CHUNK_SIZE = 25  # many small transactions, so the two really interleave
    add_readers(300, scheduled_from=at("2025-03-09T00:00Z"))
    now = at("2025-03-09T06:00Z")

    results = at_once(lambda: deliveries_dispatch_due(now, enqueue=False))

    assert sum(result.claimed for result in results) == 300
    assert Delivery.objects.count() == 300
    claimed_ids = [i for result in results for i in result.delivery_ids]
    assert len(claimed_ids) == len(set(claimed_ids)) == 300
    assert not Subscription.objects.filter(next_send_at__lte=now).exists()


def _claims_by_thread(monkeypatch, *, main_waits_for_a_helper: bool = False) -> list[tuple[str, int]]:
    """(thread name, readers claimed) of each claim, in order. With `main_waits_for_a_helper`,
    the run's own thread makes its second claim only once a helper has claimed readers, so the
    test does not depend on how fast a helper thread gets going."""
    from forecasts.sending import dispatch

    claims, claim, helper_claimed = [], dispatch._dispatch_chunk, threading.Event()

    def noted(*args):
        name = threading.current_thread().name
        if main_waits_for_a_helper and name == "MainThread" and claims:
            assert helper_claimed.wait(timeout=30), "no helper claimed anything"
        claimed = claim(*args)
        if name != "MainThread" and claimed:
            helper_claimed.set()
        claims.append((name, claimed))
        return claimed

    monkeypatch.setattr(dispatch, "_dispatch_chunk", noted)
    return claims


@pytest.mark.django_db(transaction=True)
def test_more_than_a_chunk_due_is_claimed_on_two_connections_side_by_side_each_reader_once(settings, monkeypatch):
    settings.DISPATCH_CHUNK_SIZE = 20
    readers = add_readers(400, scheduled_from=at("2025-03-09T00:00Z"))
    claims = _claims_by_thread(monkeypatch, main_waits_for_a_helper=True)
    now = at("2025-03-09T06:00Z")

    result = deliveries_dispatch_due(now, enqueue=False, connections_at_once=2)

    assert result.claimed == 400 and len(result.delivery_ids) == len(set(result.delivery_ids)) == 400
    assert sorted(Delivery.objects.values_list("subscription_id", flat=True)) == sorted(r.pk for r in readers)
    assert not Subscription.objects.filter(next_send_at__lte=now).exists()
    # The first chunk on the run's own connection, then readers claimed on both.
    assert claims[0] == ("MainThread", 20)
    assert {name for name, claimed in claims[1:] if claimed} == {"MainThread", "dispatch-helper-0"}
    assert sum(claimed for _, claimed in claims) == 400


@pytest.mark.django_db(transaction=True)
def test_a_helper_connections_error_reaches_the_caller_and_the_next_run_claims_the_rest(settings, monkeypatch):
    from forecasts.sending import dispatch

    settings.DISPATCH_CHUNK_SIZE = 10
    add_readers(100, scheduled_from=at("2025-03-09T00:00Z"))
    claim = dispatch._dispatch_chunk

    def failing_in_the_helper(*args):
        if threading.current_thread().name.startswith("dispatch-helper"):
            raise RuntimeError("the helper's connection went")
        return claim(*args)

    monkeypatch.setattr(dispatch, "_dispatch_chunk", failing_in_the_helper)
    with pytest.raises(RuntimeError, match="the helper's connection went"):
        deliveries_dispatch_due(at("2025-03-09T06:00Z"), enqueue=False, connections_at_once=2)
    # The run's own connection stopped after its chunk: what it committed stays, and the next
    # run claims the rest, one delivery per reader.
    assert Delivery.objects.count() < 100
    monkeypatch.setattr(dispatch, "_dispatch_chunk", claim)
    deliveries_dispatch_due(at("2025-03-09T06:01Z"), enqueue=False, connections_at_once=1)
    assert Delivery.objects.count() == Delivery.objects.values("subscription").distinct().count() == 100


@pytest.mark.django_db(transaction=True)
def test_when_the_runs_own_connection_fails_its_error_is_raised_and_the_helper_stops(settings, monkeypatch):
    from forecasts.sending import dispatch

    settings.DISPATCH_CHUNK_SIZE = 10
    add_readers(300, scheduled_from=at("2025-03-09T00:00Z"))
    claim, calls = dispatch._dispatch_chunk, []

    def failing_in_the_main_thread(*args):
        if threading.current_thread().name == "MainThread" and calls:
            raise RuntimeError("the run's own connection went")
        calls.append(threading.current_thread().name)
        return claim(*args)

    monkeypatch.setattr(dispatch, "_dispatch_chunk", failing_in_the_main_thread)
    with pytest.raises(RuntimeError, match="the run's own connection went"):
        deliveries_dispatch_due(at("2025-03-09T06:00Z"), enqueue=False, connections_at_once=2)
    # The helper was told to stop after its chunk rather than dispatch the other 29 alone.
    assert Delivery.objects.count() < 300


@pytest.mark.django_db(transaction=True)
def test_a_worker_asked_to_stop_ends_its_dispatch_after_the_chunk_and_the_next_run_claims_the_rest(
    settings, monkeypatch
):
    from forecasts.sending import dispatch, stopping

    settings.DISPATCH_CHUNK_SIZE = 10
    add_readers(100, scheduled_from=at("2025-03-09T00:00Z"))
    monkeypatch.setattr(stopping, "_stop", threading.Event())
    claim = dispatch._dispatch_chunk

    def sigterm_during_the_first_chunk(*args):
        claimed = claim(*args)
        stopping.request_stop()  # what SIGTERM does in a pool child
        return claimed

    monkeypatch.setattr(dispatch, "_dispatch_chunk", sigterm_during_the_first_chunk)
    result = deliveries_dispatch_due(at("2025-03-09T06:00Z"), enqueue=False, connections_at_once=2)

    # Neither connection claimed another chunk: the one committed stays, the others are still due.
    assert (result.claimed, result.chunks, result.stopped) == (10, 1, True)
    assert "stopped for the worker's shutdown" in result.summary()
    assert Delivery.objects.count() == 10
    stopping._stop.clear()  # the next run, on a worker not stopping
    monkeypatch.setattr(dispatch, "_dispatch_chunk", claim)
    rest = deliveries_dispatch_due(at("2025-03-09T06:01Z"), enqueue=False, connections_at_once=2)
    assert (rest.claimed, rest.stopped) == (90, False)
    assert Delivery.objects.count() == Delivery.objects.values("subscription").distinct().count() == 100


def test_inside_a_callers_transaction_every_chunk_is_claimed_on_its_connection(settings, monkeypatch):
    settings.DISPATCH_CHUNK_SIZE = 10  # a helper's connection would not see these uncommitted readers
    add_readers(35, scheduled_from=at("2025-03-09T00:00Z"))
    claims = _claims_by_thread(monkeypatch)

    result = deliveries_dispatch_due(at("2025-03-09T06:00Z"), enqueue=False, connections_at_once=2)

    assert result.claimed == 35 and {name for name, _ in claims} == {"MainThread"}


def test_dispatch_refuses_a_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        deliveries_dispatch_due(datetime(2025, 3, 9, 6, 0), enqueue=False)


def test_the_due_date_is_the_latest_local_date_whose_time_has_come():
    def due_date(now: datetime) -> date:
        return claim_outcome(now, "Pacific/Kiritimati", time(0, 0), None, timedelta(hours=18)).local_date

    # 09:59 UTC on 8 March is 23:59 on 8 March in UTC+14; 10:00 UTC is midnight of the 9th.
    assert due_date(at("2025-03-08T09:59Z")) == date(2025, 3, 8)
    assert due_date(at("2025-03-08T10:00Z")) == date(2025, 3, 9)


@pytest.mark.parametrize(
    "change, sent_at",
    [
        ({"topics": ["love"]}, "2025-03-09T05:01Z"),  # any edit: today's email still goes
        ({"delivery_time": time(5, 30)}, "2025-03-09T05:01Z"),  # an earlier time, also passed
        ({"delivery_time": time(7, 0)}, "2025-03-09T06:00Z"),  # a later time: sent at that time
    ],
)
def test_a_change_while_the_email_is_due_but_not_yet_dispatched_never_skips_the_day(change, sent_at):
    import time_machine

    from accounts import services

    (reader,) = add_readers(time_zone="Europe/Paris", scheduled_from=at("2025-03-09T04:00Z"))
    assert reader.next_send_at == at("2025-03-09T05:00Z")  # 06:00 in Paris
    with time_machine.travel(at("2025-03-09T05:00:30Z"), tick=False):  # before the minute's dispatch
        services.subscription_update_preferences(reader, **change)

    dispatched_at = None
    for minute in range(70):  # the beat's dispatch, once a minute
        now = at("2025-03-09T05:01Z") + timedelta(minutes=minute)
        if deliveries_dispatch_due(now, enqueue=False).delivery_ids:
            dispatched_at = dispatched_at or now
    (delivery,) = Delivery.objects.filter(subscription=reader)
    assert delivery.local_date == date(2025, 3, 9)
    assert dispatched_at == at(sent_at)


def test_a_deliverys_status_change_writes_no_index_the_unique_one_already_covers():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Delivery._meta.db_table)
    indexed = [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]
    # Lookups by reader use the unique (subscription, local_date) index; a second one on
    # subscription alone would only cost a write per status change.
    assert ["subscription_id", "local_date"] in indexed
    assert ["subscription_id"] not in indexed
