"""Every change of a Delivery's status, in one place (see Delivery.Status for what each means).

queued -> sending is the send's claim; sending -> sent/failed/unknown/cancelled/queued is the
send recording its outcomes in bulk; queued -> failed (expired), sending -> unknown (stuck) and
failed/unknown -> queued (resend) are upkeep's; SES events move a delivery to sent, delivered,
bounced, complained or failed. New deliveries are inserted queued by the dispatcher.
"""

from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from forecasts.models import Delivery
from forecasts.sending.bulk import update_rows, update_rows_statement
from forecasts.sending.holders import this_holder

# The fields a recorded outcome writes (deliveries_record).
OUTCOME_FIELDS = ["status", "forecast", "ses_message_id", "sent_at", "sending_at", "error", "updated_at", "held_by"]
RESENDABLE = (Delivery.Status.FAILED, Delivery.Status.UNKNOWN)
STUCK_REASON = (
    "The worker stopped while sending this email. It is not resent automatically: the email may "
    "have reached SES before the worker died, and resending could mail the reader twice. Check the "
    "SES events, then use the admin action “Resend” if it never arrived."
)


def delivery_mark(delivery: Delivery, status: str, error: str | None = None, **values) -> None:
    """Set a delivery's new status in memory (the caller saves it); `error` None keeps the old one."""
    delivery.status = status
    if error is not None:
        delivery.error = error[:2000]
    delivery.updated_at = timezone.now()
    for name, value in values.items():
        setattr(delivery, name, value)


def deliveries_record(deliveries: Sequence[Delivery]) -> None:
    """Write the outcomes marked on deliveries this worker holds (`sending`), in one statement.

    Rows an SES event already moved on (e.g. to delivered) are left as they are. Each outcome
    ends the hold: the caller marks `held_by` empty.
    """
    update_rows(Delivery, deliveries, OUTCOME_FIELDS, only_status=Delivery.Status.SENDING)


def deliveries_claim(delivery_ids: Sequence[int], now: datetime) -> list[int]:
    """queued -> sending for the ids no other worker has; returns the ids this call moved."""
    return [delivery.pk for delivery in deliveries_claim_for_sending(delivery_ids, now, read=False)]


# What sending reads of a claimed delivery and its reader (the claim returns them): the outcome's
# fields, as the results write them all back, and what personalising the email needs.
SEND_FIELDS = (*OUTCOME_FIELDS, "subscription", "local_date", "attempts")
READER_FIELDS = ("id", "user", "sign", "time_zone", "delivery_time", "topics", "status")
USER_FIELDS = ("id", "email")


def deliveries_claim_for_sending(
    delivery_ids: Sequence[int], now: datetime, *, read: bool = True, record: Sequence[Delivery] = ()
) -> list[Delivery]:
    """queued -> sending for the ids no other worker has; returns the deliveries this call moved,
    by id, each with its subscription and user loaded (SEND_FIELDS, READER_FIELDS, USER_FIELDS).

    On PostgreSQL one statement claims and reads them (SKIP LOCKED passes over rows another
    worker is claiming): one round trip, no ORM query to build; the outcomes in `record` (the
    previous chunk's, as deliveries_record writes them) go in the same statement, so one
    commit instead of two. Elsewhere they are recorded first, then a short transaction claims,
    then a read. If the rows cannot be read, the claim is undone: none of them reached SES.
    """
    connection = connections[router.db_for_write(Delivery)]
    if connection.vendor != "postgresql":
        deliveries_record(record)
        return _claim_then_read(delivery_ids, now, read)
    meta = Delivery._meta
    quote = connection.ops.quote_name
    table, pk, pk_type = quote(meta.db_table), quote(meta.pk.column), meta.pk.db_type(connection)
    column = {
        name: quote(meta.get_field(name).column)
        for name in ("status", "sending_at", "updated_at", "attempts", "held_by")
    }
    params = [Delivery.Status.SENDING, now, now, this_holder(), list(delivery_ids), Delivery.Status.QUEUED]
    recorded = ""
    if record:
        # Rows of another chunk (ids are never in two chunks of a batch): one statement may
        # update them and claim these; each part sees the rows as they were before it.
        sql, record_params = update_rows_statement(
            connection, Delivery, record, OUTCOME_FIELDS, only_status=Delivery.Status.SENDING
        )
        recorded, params = f"recorded AS ({sql}), ", [*record_params, *params]
    # Only names from the models' own metadata go into the SQL; values are parameters.
    claim = (
        f"UPDATE {table} SET {column['status']} = %s, {column['sending_at']} = %s, "  # noqa: S608
        f"{column['updated_at']} = %s, {column['attempts']} = {column['attempts']} + 1, {column['held_by']} = %s "
        f"WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {pk} = ANY(%s::{pk_type}[]) AND {column['status']} = %s "
        f"FOR UPDATE SKIP LOCKED)"
    )
    if not read:
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {recorded}claimed AS ({claim} RETURNING {pk}) SELECT * FROM claimed", params)  # noqa: S608
            return [Delivery.from_db(connection.alias, ["id"], row) for row in cursor.fetchall()]
    loaders = _claim_loaders(connection.alias)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {recorded}claimed AS ({claim} RETURNING *) {loaders.select}", params)
        rows = cursor.fetchall()
    try:
        return loaders.deliveries(rows, connection)
    except BaseException:
        with suppress(Exception):
            deliveries_unclaim([row[0] for row in rows])
        raise


class _ClaimLoaders:
    """The claim's read (claimed deliveries joined to their readers) and the model instances made
    from its rows, as the ORM's select_related().only() would make them."""

    def __init__(self, connection) -> None:
        quote = connection.ops.quote_name
        subscription_field = Delivery._meta.get_field("subscription")
        subscription_model = subscription_field.related_model
        user_field = subscription_model._meta.get_field("user")
        self.parts = []  # (model, attnames, converters, first column, the relation to cache it on)
        columns, start = [], 0
        for model, names, table, relation in (
            (Delivery, ("id", *SEND_FIELDS), "claimed", None),
            (subscription_model, READER_FIELDS, "s", subscription_field),
            (user_field.related_model, USER_FIELDS, "u", user_field),
        ):
            # In the model's own order, as from_db() expects values.
            fields = [field for field in model._meta.concrete_fields if field.name in names]
            columns_of = [field.get_col(table) for field in fields]
            converters = [
                (i, col, found)
                for i, col in enumerate(columns_of)
                if (found := connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            ]
            self.parts.append((model, [f.attname for f in fields], converters, start, relation))
            columns += [f"{table}.{quote(f.column)}" for f in fields]
            start += len(fields)
        subscriptions = quote(subscription_model._meta.db_table)
        users = quote(user_field.related_model._meta.db_table)
        self.select = (
            f"SELECT {', '.join(columns)} FROM claimed "  # noqa: S608
            f"JOIN {subscriptions} s ON s.{quote(subscription_model._meta.pk.column)} = "
            f"claimed.{quote(subscription_field.column)} "
            f"JOIN {users} u ON u.{quote(user_field.related_model._meta.pk.column)} = s.{quote(user_field.column)} "
            f"ORDER BY claimed.{quote(Delivery._meta.pk.column)}"
        )

    def deliveries(self, rows, connection) -> list[Delivery]:
        deliveries = []
        for row in rows:
            made = []
            for model, attnames, converters, start, relation in self.parts:
                values = list(row[start : start + len(attnames)])
                for i, col, found in converters:
                    for converter in found:
                        values[i] = converter(values[i], col, connection)
                instance = model.from_db(connection.alias, attnames, values)
                if relation is not None:
                    relation.set_cached_value(made[-1], instance)
                made.append(instance)
            deliveries.append(made[0])
        return deliveries


@lru_cache(maxsize=4)
def _claim_loaders(alias: str) -> _ClaimLoaders:
    """Built once per database: the read's SQL and converters depend on the models only."""
    return _ClaimLoaders(connections[alias])


def _claim_then_read(delivery_ids: Sequence[int], now: datetime, read: bool) -> list[Delivery]:
    holder = this_holder()
    alias = router.db_for_write(Delivery)
    with transaction.atomic(using=alias):
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(id__in=list(delivery_ids), status=Delivery.Status.QUEUED)
            .values_list("id", flat=True)
        )
        Delivery.objects.filter(id__in=ids).update(
            status=Delivery.Status.SENDING,
            sending_at=now,
            updated_at=now,
            attempts=F("attempts") + 1,
            held_by=holder,
        )
    if not read or not ids:
        return [Delivery.from_db(alias, ["id"], [pk]) for pk in sorted(ids)]
    fields = [
        *SEND_FIELDS,
        *(f"subscription__{name}" for name in READER_FIELDS if name != "id"),
        *(f"subscription__user__{name}" for name in USER_FIELDS if name != "id"),
    ]
    try:
        return list(
            Delivery.objects.select_related("subscription__user").only(*fields).filter(id__in=ids).order_by("id")
        )
    except BaseException:
        with suppress(Exception):
            deliveries_unclaim(ids)
        raise


def deliveries_unclaim(delivery_ids: Sequence[int]) -> None:
    """sending -> queued for claimed deliveries none of which reached SES."""
    Delivery.objects.filter(id__in=delivery_ids, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.QUEUED, sending_at=None, updated_at=timezone.now(), held_by=""
    )


def deliveries_expire(now: datetime, stale_after: timedelta) -> int:
    """queued -> failed for deliveries still queued DELIVERY_EXPIRE_HOURS after their time; how many."""
    return Delivery.objects.filter(
        status=Delivery.Status.QUEUED,
        due_at__lt=now - timedelta(hours=settings.DELIVERY_EXPIRE_HOURS),
        updated_at__lt=now - stale_after,
    ).update(
        status=Delivery.Status.FAILED,
        error=Concat(
            Value(f"Expired: not sent within {settings.DELIVERY_EXPIRE_HOURS} hours of its time. Last reason: "),
            F("error"),
        ),
        updated_at=now,
    )


def deliveries_mark_stuck(now: datetime) -> int:
    """sending -> unknown for deliveries sending longer than DELIVERY_STUCK_SENDING_MINUTES; how many."""
    return Delivery.objects.filter(
        status=Delivery.Status.SENDING,
        sending_at__lt=now - timedelta(minutes=settings.DELIVERY_STUCK_SENDING_MINUTES),
    ).update(status=Delivery.Status.UNKNOWN, error=STUCK_REASON, updated_at=now, held_by="")


def deliveries_reopen(delivery_ids: Sequence[int], now: datetime) -> None:
    """failed/unknown -> queued, with no error (an admin's resend; the caller holds the rows' locks)."""
    Delivery.objects.filter(id__in=delivery_ids).update(
        status=Delivery.Status.QUEUED, error="", sending_at=None, updated_at=now, held_by=""
    )


def deliveries_hold(delivery_ids: Sequence[int], holder: str) -> int:
    """Note that `holder` (a worker that received their send task) holds these queued deliveries."""
    return Delivery.objects.filter(id__in=list(delivery_ids), status=Delivery.Status.QUEUED).update(held_by=holder)
