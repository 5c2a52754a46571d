"""Dispatch: claim the subscriptions whose email is due, record one Delivery each, enqueue.

Due subscriptions are claimed with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL (an
IMMEDIATE transaction on SQLite), and each reader's email for a local date is one Delivery under
a unique (subscription, local_date) constraint, so two dispatchers, or one run twice, never
make two. Send tasks are enqueued only once the chunk has committed.
"""

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from accounts.models import Subscription
from accounts.scheduling import local_send_instant, zone
from forecasts.models import Delivery
from forecasts.sending.bulk import update_rows
from forecasts.sending.enqueue import deliveries_enqueue


def _insert_deliveries(new: list[tuple[int, date, datetime]]) -> list[tuple[int, int, date]]:
    """Insert deliveries (subscription id, local date, due at), skipping any (subscription, local
    date) that has one already; returns (id, subscription id, local date) of those inserted.

    On PostgreSQL one statement over arrays; elsewhere bulk_create, whose per-field preparation
    of a thousand rows costs more than the insert itself (and returns nothing).
    """
    connection = connections[router.db_for_write(Delivery)]
    if connection.vendor != "postgresql":
        rows = [Delivery(subscription_id=s, local_date=d, due_at=t) for s, d, t in new]
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
        return []
    if not new:
        return []
    quote = connection.ops.quote_name
    meta = Delivery._meta
    column = {name: quote(meta.get_field(name).column) for name in ("subscription", "local_date", "due_at")}
    defaults = {"status": Delivery.Status.QUEUED, "error": "", "attempts": 0, "ses_message_id": "", "held_by": ""}
    now = timezone.now()
    stamps = ("queued_at", "updated_at")
    names = [*(quote(meta.get_field(name).column) for name in [*defaults, *stamps])]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({column['subscription']}, {column['local_date']}, {column['due_at']}, "  # noqa: S608
        f"{', '.join(names)}) "
        f"SELECT u.s, u.d, u.t, {', '.join(['%s'] * (len(defaults) + len(stamps)))} "
        "FROM unnest(%s::bigint[], %s::date[], %s::timestamptz[]) AS u(s, d, t) "
        f"ON CONFLICT ({column['subscription']}, {column['local_date']}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}, {column['subscription']}, {column['local_date']}"
    )
    params = [
        *defaults.values(),
        *([now] * len(stamps)),
        [s for s, _, _ in new],
        [d for _, d, _ in new],
        [t for _, _, t in new],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


@dataclass
class DispatchResult:
    """What one dispatch run claimed and queued."""

    claimed: int = 0
    delivery_ids: list[int] = field(default_factory=list)
    skipped_late: int = 0
    chunks: int = 0

    def summary(self) -> str:
        late = f", {self.skipped_late} too late for their date" if self.skipped_late else ""
        return f"claimed {self.claimed} due subscriptions, queued {len(self.delivery_ids)} deliveries{late}"


def _due_date(now: datetime, subscription: Subscription) -> tuple[date, datetime]:
    """The latest local date whose send time has come, and that send time.

    Normally the date next_send_at was set for. After an outage longer than a day it is the
    most recent missed date: nobody wants yesterday's horoscope after today's.
    """
    tz = zone(subscription.time_zone)
    day = now.astimezone(tz).date()
    instant = local_send_instant(day, subscription.delivery_time, tz)
    while instant > now:
        day -= timedelta(days=1)
        instant = local_send_instant(day, subscription.delivery_time, tz)
    return day, instant


def _dispatch_chunk(now: datetime, limit: int, enqueue: bool, result: DispatchResult) -> int:
    """Claim up to `limit` due subscriptions in one transaction; a fixed number of queries."""
    expire_after = timedelta(hours=settings.DELIVERY_EXPIRE_HOURS)
    with transaction.atomic():
        subscriptions = list(
            Subscription.objects.select_for_update(skip_locked=True)
            .filter(status=Subscription.Status.ACTIVE, next_send_at__lte=now)
            .order_by("next_send_at")
            .only("id", "status", "time_zone", "delivery_time", "next_send_at", "last_local_date")[:limit]
        )
        if not subscriptions:
            return 0
        new = []
        for subscription in subscriptions:
            day, due_at = _due_date(now, subscription)
            if subscription.last_local_date is None or day > subscription.last_local_date:
                if now - due_at <= expire_after:
                    new.append((subscription.id, day, due_at))
                else:
                    result.skipped_late += 1
                subscription.last_local_date = day
            subscription.next_send_at = subscription.compute_next_send_at(now)
        # The unique (subscription, local_date) constraint is the last guard against a second email.
        inserted = _insert_deliveries(new)
        update_rows(Subscription, subscriptions, ["next_send_at", "last_local_date"])
        ids = [pk for pk, _, _ in inserted]
        # Pairs that had a delivery already (or were not reported) keep it, queued again if still queued.
        wanted = {(s, d) for s, d, _ in new} - {(s, d) for _, s, d in inserted}
        if wanted:
            ids += [
                pk
                for pk, subscription_id, local_date in Delivery.objects.filter(
                    subscription_id__in=[s for s, _ in wanted],
                    local_date__in={d for _, d in wanted},
                    status=Delivery.Status.QUEUED,
                )
                .order_by()
                .values_list("id", "subscription_id", "local_date")
                if (subscription_id, local_date) in wanted
            ]
        if enqueue and ids:
            transaction.on_commit(partial(deliveries_enqueue, sorted(ids)))
    result.claimed += len(subscriptions)
    result.delivery_ids += sorted(ids)
    result.chunks += 1
    return len(subscriptions)


def deliveries_dispatch_due(
    now: datetime | None = None,
    *,
    enqueue: bool = True,
    chunk_size: int | None = None,
    time_budget: float = 45.0,
) -> DispatchResult:
    """Claim every subscription whose next_send_at has come and queue its email for its local date.

    Works in chunks of DISPATCH_CHUNK_SIZE, each its own transaction with a fixed number of
    queries, until nothing is due or `time_budget` seconds have passed (the next run, a minute
    later, continues). With `enqueue`, send tasks are enqueued once each chunk has committed.
    """
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    limit = chunk_size or settings.DISPATCH_CHUNK_SIZE
    result = DispatchResult()
    started = time.monotonic()
    while _dispatch_chunk(now, limit, enqueue, result) == limit:
        if time.monotonic() - started > time_budget:
            break
    return result
