"""Dispatch: claim the subscriptions whose email is due, record one Delivery each, enqueue.

Due subscriptions are claimed with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL (an
IMMEDIATE transaction on SQLite), and each reader's email for a local date is one Delivery under
a unique (subscription, local_date) constraint, so two dispatchers, or one run twice, never
make two. Send tasks are enqueued only once the chunk has committed.
"""

import logging
import threading
import time as clock
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from accounts.models import Subscription
from accounts.scheduling import local_send_instant, zone
from forecasts.models import Delivery
from forecasts.sending.bulk import update_rows
from forecasts.sending.enqueue import deliveries_enqueue
from forecasts.sending.stopping import stop_requested

logger = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    """What one dispatch run claimed and queued."""

    claimed: int = 0
    delivery_ids: list[int] = field(default_factory=list)
    skipped_late: int = 0
    chunks: int = 0
    # The worker was asked to stop (SIGTERM) before everything due was claimed: the next run,
    # on any worker, claims the rest.
    stopped: bool = False

    def add(self, other: "DispatchResult") -> None:
        self.claimed += other.claimed
        self.delivery_ids += other.delivery_ids
        self.skipped_late += other.skipped_late
        self.chunks += other.chunks
        self.stopped |= other.stopped

    def summary(self) -> str:
        late = f", {self.skipped_late} too late for their date" if self.skipped_late else ""
        stopped = "; stopped for the worker's shutdown, the next run claims the rest" if self.stopped else ""
        return f"claimed {self.claimed} due subscriptions, queued {len(self.delivery_ids)} deliveries{late}{stopped}"


def _due_date(now: datetime, time_zone: str, delivery_time: time) -> tuple[date, datetime]:
    """The latest local date whose send time has come, and that send time.

    Normally the date next_send_at was set for. After an outage longer than a day it is the
    most recent missed date: nobody wants yesterday's horoscope after today's.
    """
    tz = zone(time_zone)
    day = now.astimezone(tz).date()
    instant = local_send_instant(day, delivery_time, tz)
    while instant > now:
        day -= timedelta(days=1)
        instant = local_send_instant(day, delivery_time, tz)
    return day, instant


@dataclass(frozen=True)
class ClaimOutcome:
    """What claiming a due reader at `now` does: the same for every reader who shares their zone,
    delivery time and last local date, so a chunk works it out once per such group."""

    local_date: date  # the latest local date whose send time has come
    due_at: datetime  # that date's send time
    send: bool  # a Delivery for local_date is to be made
    late: bool  # local_date is new but too long past its time: skipped, not sent late
    last_local_date: date | None
    next_send_at: datetime


def claim_outcome(
    now: datetime, time_zone: str, delivery_time: time, last_local_date: date | None, expire_after: timedelta
) -> ClaimOutcome:
    """The outcome of claiming one due reader with these preferences at `now` (pure, no queries)."""
    day, due_at = _due_date(now, time_zone, delivery_time)
    new_date = last_local_date is None or day > last_local_date
    send = new_date and now - due_at <= expire_after
    last_local_date = day if new_date else last_local_date
    # compute_next_send_at is the one rule for next_send_at; an unsaved reader carries its inputs.
    reader = Subscription(
        status=Subscription.Status.ACTIVE,
        time_zone=time_zone,
        delivery_time=delivery_time,
        last_local_date=last_local_date,
    )
    return ClaimOutcome(day, due_at, send, new_date and not send, last_local_date, reader.compute_next_send_at(now))


def _bigint_array(values: list[int]) -> str:
    """A PostgreSQL array literal of integers, for a `%s::bigint[]` parameter.

    psycopg dumps a list item by item in Python (2 ms for a thousand ids); joined here it is
    six times cheaper, and integers need no quoting.
    """
    return "{" + ",".join(map(str, values)) + "}"


def _record_postgresql(
    connection, groups: dict[tuple, list[int]], outcomes: dict[tuple, ClaimOutcome]
) -> list[tuple[int, int, date]]:
    """Advance every claimed reader and insert their deliveries in one statement; returns (id,
    subscription id, local date) of the deliveries inserted. It also counts the readers
    advanced, so a reader left out is an error, not a reader claimed again next chunk.

    The claimed rows are locked, so their zone, time and last local date are still those they
    were grouped by: each row joins its group's outcome on them (a few rows of arrays), and only
    the ids travel one per row. Pairs that already have a delivery are skipped (ON CONFLICT).
    """
    quote = connection.ops.quote_name
    reader, delivery = Subscription._meta, Delivery._meta
    s = {name: quote(reader.get_field(name).column) for name in ("time_zone", "delivery_time", "last_local_date")}
    s |= {"id": quote(reader.pk.column), "next_send_at": quote(reader.get_field("next_send_at").column)}
    d = {name: quote(delivery.get_field(name).column) for name in ("subscription", "local_date", "due_at")}
    defaults = {"status": Delivery.Status.QUEUED, "error": "", "attempts": 0, "ses_message_id": "", "held_by": ""}
    stamps = ("queued_at", "updated_at")
    filled = ", ".join(quote(delivery.get_field(name).column) for name in [*defaults, *stamps])
    # Only names from the models' own metadata go into the SQL; values are parameters.
    sql = f"""
        WITH outcome AS (
            SELECT * FROM unnest(%s::text[], %s::time[], %s::date[], %s::date[], %s::timestamptz[], %s::date[],
                                 %s::timestamptz[])
                AS o(time_zone, delivery_time, old_last, new_last, next_at, send_date, due_at)
        ), advanced AS (
            UPDATE {quote(reader.db_table)} AS s
            SET {s["last_local_date"]} = o.new_last, {s["next_send_at"]} = o.next_at
            FROM outcome AS o
            WHERE s.{s["id"]} = ANY(%s::bigint[])
                AND s.{s["time_zone"]} = o.time_zone AND s.{s["delivery_time"]} = o.delivery_time
                AND s.{s["last_local_date"]} IS NOT DISTINCT FROM o.old_last
            RETURNING s.{s["id"]} AS id, o.send_date, o.due_at
        ), inserted AS (
            INSERT INTO {quote(delivery.db_table)} ({d["subscription"]}, {d["local_date"]}, {d["due_at"]}, {filled})
            SELECT a.id, a.send_date, a.due_at, {", ".join(["%s"] * (len(defaults) + len(stamps)))}
            FROM advanced AS a WHERE a.send_date IS NOT NULL
            ON CONFLICT ({d["subscription"]}, {d["local_date"]}) DO NOTHING
            RETURNING {quote(delivery.pk.column)} AS id, {d["subscription"]} AS reader, {d["local_date"]} AS local_date
        )
        SELECT i.id, i.reader, i.local_date FROM inserted AS i
        UNION ALL SELECT NULL, count(*), NULL FROM advanced
    """  # noqa: S608
    keys = list(groups)
    now = timezone.now()
    params = [
        [key[0] for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
        [outcomes[key].last_local_date for key in keys],
        [outcomes[key].next_send_at for key in keys],
        [outcomes[key].local_date if outcomes[key].send else None for key in keys],
        [outcomes[key].due_at for key in keys],
        _bigint_array([pk for ids in groups.values() for pk in ids]),
        *defaults.values(),
        *([now] * len(stamps)),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # The row without a delivery id counts the readers advanced. (Not a join of the two: the
    # planner expects one row from each and would compare every pair.)
    advanced = next(count for pk, count, _ in rows if pk is None)
    claimed = sum(map(len, groups.values()))
    if advanced != claimed:
        # A claimed reader left unadvanced would stay due and be claimed again, chunk after chunk.
        raise RuntimeError(f"advanced {advanced} of {claimed} claimed readers")
    return [row for row in rows if row[0] is not None]


def _record_elsewhere(groups: dict[tuple, list[int]], outcomes: dict[tuple, ClaimOutcome]) -> None:
    """SQLite's path: bulk_create the deliveries (skipping existing pairs), then one UPDATE per
    reader sent together; returns nothing, so the caller looks the deliveries up."""
    deliveries, advanced = [], []
    for key, ids in groups.items():
        outcome = outcomes[key]
        for pk in ids:
            if outcome.send:
                deliveries.append(Delivery(subscription_id=pk, local_date=outcome.local_date, due_at=outcome.due_at))
            advanced.append(
                Subscription(id=pk, next_send_at=outcome.next_send_at, last_local_date=outcome.last_local_date)
            )
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    update_rows(Subscription, advanced, ["next_send_at", "last_local_date"])


def _dispatch_chunk(now: datetime, limit: int, enqueue: bool, result: DispatchResult) -> int:
    """Claim up to `limit` due subscriptions in one transaction; a fixed number of queries."""
    expire_after = timedelta(hours=settings.DELIVERY_EXPIRE_HOURS)
    connection = connections[router.db_for_write(Subscription)]
    with transaction.atomic(using=connection.alias):
        claimed = list(
            Subscription.objects.select_for_update(skip_locked=True)
            .filter(status=Subscription.Status.ACTIVE, next_send_at__lte=now)
            .order_by("next_send_at")
            .values_list("id", "time_zone", "delivery_time", "last_local_date")[:limit]
        )
        if not claimed:
            return 0
        # Readers share zones and times: the date maths runs once per group, not once per row.
        groups: dict[tuple[str, time, date | None], list[int]] = {}
        for pk, time_zone, delivery_time, last_local_date in claimed:
            groups.setdefault((time_zone, delivery_time, last_local_date), []).append(pk)
        outcomes = {key: claim_outcome(now, *key, expire_after) for key in groups}
        # The unique (subscription, local_date) constraint is the last guard against a second email.
        if connection.vendor == "postgresql":
            inserted = _record_postgresql(connection, groups, outcomes)
        else:
            _record_elsewhere(groups, outcomes)
            inserted = []
        ids = [pk for pk, _, _ in inserted]
        result.skipped_late += sum(len(groups[key]) for key, outcome in outcomes.items() if outcome.late)
        # Pairs that had a delivery already (or were not reported) keep it, queued again if still queued.
        wanted = {(pk, outcome.local_date) for key, outcome in outcomes.items() if outcome.send for pk in groups[key]}
        wanted -= {(s, d) for _, s, d in inserted}
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
            transaction.on_commit(partial(deliveries_enqueue, sorted(ids)), using=connection.alias)
    result.claimed += len(claimed)
    result.delivery_ids += sorted(ids)
    result.chunks += 1
    return len(claimed)


def deliveries_dispatch_due(
    now: datetime | None = None,
    *,
    enqueue: bool = True,
    chunk_size: int | None = None,
    time_budget: float = 45.0,
    connections_at_once: int | None = None,
) -> DispatchResult:
    """Claim every subscription whose next_send_at has come and queue its email for its local date.

    Works in chunks of DISPATCH_CHUNK_SIZE, each its own transaction with a fixed number of
    queries, until nothing is due or `time_budget` seconds have passed (the next run, a minute
    later, continues). With `enqueue`, send tasks are enqueued once each chunk has committed.
    When the first chunk comes back full on PostgreSQL, DISPATCH_CONNECTIONS connections (this
    one and helper threads with their own) claim chunks side by side: SKIP LOCKED gives each
    different readers, and the work is PostgreSQL's, so the chunks run on several cores.
    """
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    limit = chunk_size or settings.DISPATCH_CHUNK_SIZE
    wanted = connections_at_once or settings.DISPATCH_CONNECTIONS
    result = DispatchResult()
    deadline = clock.monotonic() + time_budget
    if _dispatch_chunk(now, limit, enqueue, result) < limit:
        return result
    connection = connections[router.db_for_write(Subscription)]
    # Inside a caller's transaction (a test's, say) another connection would not see its rows.
    helpers = wanted - 1 if connection.vendor == "postgresql" and not connection.in_atomic_block else 0
    stop = threading.Event()
    work = partial(_dispatch_chunks, now, limit, enqueue, deadline, stop)
    with _HelperThreads(helpers, work, stop) as helper_results:
        work(result)
    for helper_result in helper_results:
        result.add(helper_result)
    return result


def _dispatch_chunks(
    now: datetime, limit: int, enqueue: bool, deadline: float, stop: threading.Event, result: DispatchResult
) -> None:
    """Claim chunk after chunk until one comes back short (nothing more is due), past `deadline`,
    once `stop` is set, or once the worker is asked to stop (a deploy's SIGTERM): each chunk has
    committed, so stopping between them leaves nothing half done."""
    while not stop.is_set() and clock.monotonic() <= deadline:
        if stop_requested():
            result.stopped = True
            return
        if _dispatch_chunk(now, limit, enqueue, result) < limit:
            return


class _HelperThreads:
    """`work(result)` in `count` threads, each with its own database connection (Django's are per
    thread), closed when it ends. Leaving the block waits for them: if the block failed, they are
    told to stop after their chunk and its error is raised; else the first error a helper met.
    The block's value is the helpers' results, filled in once it is left."""

    def __init__(self, count: int, work, stop: threading.Event) -> None:
        self.results = [DispatchResult() for _ in range(count)]
        self.errors: list[BaseException] = []
        self.stop = stop
        self.threads = [
            threading.Thread(target=self._run, args=(work, result), name=f"dispatch-helper-{i}")
            for i, result in enumerate(self.results)
        ]

    def _run(self, work, result: DispatchResult) -> None:
        try:
            work(result)
        except BaseException as exc:  # handed to the caller's thread
            self.errors.append(exc)
            self.stop.set()  # the others finish their chunk and stop too
        finally:
            connections.close_all()

    def __enter__(self) -> list[DispatchResult]:
        try:
            for thread in self.threads:
                thread.start()
        except BaseException:  # no thread to be had: those started stop after their chunk
            self.stop.set()
            self._join()
            raise
        return self.results

    def __exit__(self, kind, error, traceback) -> None:
        if error is not None:
            self.stop.set()
        self._join()
        if error is not None:
            for helper_error in self.errors:  # the block's own error is the one raised
                logger.warning("a dispatch helper failed too: %s: %s", type(helper_error).__name__, helper_error)
        elif self.errors:
            raise self.errors[0]

    def _join(self) -> None:
        for thread in self.threads:
            if thread.ident is not None:  # started
                thread.join()
