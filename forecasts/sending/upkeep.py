"""Looking after the daily send: requeue what got stale, resend on an admin's decision, the run report.

Anything left queued (a lost broker message, a missing forecast, throttling) is handed to a
worker again by `deliveries_requeue_stale`; anything left *sending* is not (see there).
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import Subscription
from forecasts.models import Delivery
from forecasts.sending.delivery_status import (
    RESENDABLE,
    deliveries_expire,
    deliveries_mark_stuck,
    deliveries_reopen,
)
from forecasts.sending.enqueue import deliveries_enqueue
from forecasts.sending.send_records import deliveries_settle
from forecasts.sending.ses import max_send_rate

REQUEUE_MAX_PER_RUN = 20_000


@dataclass
class RequeueReport:
    """What one upkeep run requeued, marked stuck and expired."""

    requeued: int = 0
    stuck: int = 0
    expired: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def deliveries_requeue_stale(now: datetime | None = None) -> RequeueReport:
    """Look after deliveries that did not move on.

    - queued for longer than DELIVERY_STALE_QUEUED_MINUTES (or than the queue ahead of them
      takes at the send rate): enqueued again; the send's claim makes a duplicate harmless;
    - queued more than DELIVERY_EXPIRE_HOURS after their time: failed, a stale horoscope helps nobody;
    - sending for longer than DELIVERY_STUCK_SENDING_MINUTES: marked unknown and NOT resent.
      The worker died between claiming and recording, and the email may have reached SES
      before it did: resending risks a second email, which the product promises never to send.
    """
    now = now or timezone.now()
    report = RequeueReport()
    stale_after = timedelta(minutes=settings.DELIVERY_STALE_QUEUED_MINUTES)
    report.expired = deliveries_expire(now, stale_after)
    report.stuck = deliveries_mark_stuck(now)
    # A long queue at a low send rate is not stale, only waiting its turn: do not flood the broker.
    queued = Delivery.objects.filter(status=Delivery.Status.QUEUED).count()
    rate = max_send_rate(get_connection()) if queued else None
    if rate:
        stale_after = max(stale_after, timedelta(seconds=1.5 * queued / rate))
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.QUEUED, updated_at__lt=now - stale_after)
            .order_by("due_at")
            .values_list("id", flat=True)[:REQUEUE_MAX_PER_RUN]
        )
        if ids:
            Delivery.objects.filter(id__in=ids).update(updated_at=now)
            transaction.on_commit(partial(deliveries_enqueue, ids))
    report.requeued = len(ids)
    return report


def deliveries_resend(delivery_ids: Iterable[int]) -> int:
    """Put failed or unknown deliveries back in the queue and enqueue them (an admin's decision).

    An unknown delivery the email service has a Send record of is marked sent instead: it
    reached the reader's mailbox provider, and resending would mail them twice.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update()
            .filter(id__in=list(delivery_ids), status__in=RESENDABLE)
            .only("id", "status", "error", "ses_message_id", "sent_at", "held_by", "updated_at")
        )
        settled = deliveries_settle([d for d in rows if d.status == Delivery.Status.UNKNOWN])
        ids = [d.pk for d in rows if d.pk not in settled]
        if ids:
            deliveries_reopen(ids, now)
            transaction.on_commit(partial(deliveries_enqueue, ids))
    return len(ids)


REPORT_COLUMNS = [
    Delivery.Status.QUEUED,
    Delivery.Status.SENDING,
    Delivery.Status.SENT,
    Delivery.Status.DELIVERED,
    Delivery.Status.FAILED,
    Delivery.Status.BOUNCED,
    Delivery.Status.COMPLAINED,
    Delivery.Status.UNKNOWN,
    Delivery.Status.CANCELLED,
]


def deliveries_run_report(day: date, now: datetime | None = None) -> dict:
    """Counts for one local date, by status and by UTC hour of the due time, plus the errors seen."""
    now = now or timezone.now()
    base = Delivery.objects.filter(local_date=day)
    rows = base.annotate(hour=TruncHour("due_at")).values("hour", "status").annotate(n=Count("id")).order_by("hour")
    totals = {status: 0 for status in REPORT_COLUMNS}
    hours: dict[datetime, dict] = {}
    for row in rows:
        hour = hours.setdefault(row["hour"], {"hour": row["hour"], "due": 0, **{s: 0 for s in REPORT_COLUMNS}})
        hour[row["status"]] = hour.get(row["status"], 0) + row["n"]
        hour["due"] += row["n"]
        totals[row["status"]] = totals.get(row["status"], 0) + row["n"]
    errors = list(
        base.exclude(error="").values("status", "error").annotate(n=Count("id")).order_by("-n", "status", "error")[:50]
    )
    overdue = Subscription.objects.filter(status=Subscription.Status.ACTIVE, next_send_at__lte=now).count()
    return {
        "day": day,
        "due": sum(totals.values()),
        "totals": totals,
        "hours": [hours[key] for key in sorted(hours)],
        "errors": errors,
        "overdue_subscriptions": overdue,
        "columns": REPORT_COLUMNS,
    }
