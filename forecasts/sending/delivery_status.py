"""Every change of a Delivery's status, in one place (see Delivery.Status for what each means).

queued -> sending is the send's claim; sending -> sent/failed/unknown/cancelled/queued is the
send recording its outcomes in bulk; queued -> failed (expired), sending -> unknown (stuck) and
failed/unknown -> queued (resend) are upkeep's; SES events move a delivery to sent, delivered,
bounced, complained or failed. New deliveries are inserted queued by the dispatcher.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from forecasts.models import Delivery
from forecasts.sending.bulk import update_rows
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
    """queued -> sending for the ids no other worker has; returns the ids this call moved.

    On PostgreSQL one statement (SKIP LOCKED passes over rows another worker is claiming), so
    a claim is one round trip, not a transaction of four; elsewhere a short transaction.
    """
    connection = connections[router.db_for_write(Delivery)]
    meta = Delivery._meta
    holder = this_holder()
    if connection.vendor != "postgresql":
        with transaction.atomic(using=connection.alias):
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
        return ids
    quote = connection.ops.quote_name
    table, pk, pk_type = quote(meta.db_table), quote(meta.pk.column), meta.pk.db_type(connection)
    names = ("status", "sending_at", "updated_at", "attempts", "held_by")
    column = {name: quote(meta.get_field(name).column) for name in names}
    # Only names from the model's own metadata go into the SQL; values are parameters.
    sql = (
        f"UPDATE {table} SET {column['status']} = %s, {column['sending_at']} = %s, "  # noqa: S608
        f"{column['updated_at']} = %s, {column['attempts']} = {column['attempts']} + 1, {column['held_by']} = %s "
        f"WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {pk} = ANY(%s::{pk_type}[]) AND {column['status']} = %s "
        f"FOR UPDATE SKIP LOCKED) RETURNING {pk}"
    )
    params = [Delivery.Status.SENDING, now, now, holder, list(delivery_ids), Delivery.Status.QUEUED]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


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
