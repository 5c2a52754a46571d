"""Recovery of what a lost worker held, run by every dispatch (each minute), so within about a minute.

Deliveries and forecast claims name their holder (forecasts/sending/holders.py). For each holder
that is lost:
- its queued deliveries (a send task it had received) are enqueued again: the broker would
  hand the task back only after its visibility timeout (15 minutes with Redis, SQS);
- its "sending" deliveries are settled from the Send records (forecasts/sending/send_records.py)
  once the holder can no longer be sending them (its claim's lease, SES's answer and the
  records' delay have passed): those with a record are sent; the others never reached the
  email service and are enqueued again when the records are complete (the outbox; SES with
  Send events), else marked unknown for the operator, as before;
- its "generating" forecast claims are released, and deliveries waiting for them enqueued.

Why the dispatch: it runs every minute on some live worker whatever the broker, and a lost
worker is noticed from the database alone. Re-enqueueing is safe: a send claims each delivery
before mailing it, so a task delivered twice sends nothing twice.
"""

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial, reduce
from operator import or_

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from forecasts.models import Delivery, Forecast
from forecasts.sending.delivery_status import STUCK_REASON
from forecasts.sending.enqueue import deliveries_enqueue
from forecasts.sending.holders import Holders
from forecasts.sending.outbox import OUTBOX_BACKEND, outbox_deliver_accepted
from forecasts.sending.send_records import deliveries_settle, send_record_wait_seconds, send_records_complete

logger = logging.getLogger(__name__)

HELD = (Delivery.Status.QUEUED, Delivery.Status.SENDING)
RESENT_REASON = "Sent again: the worker sending it was lost, and the email service has no record of it."


@dataclass
class RecoveryReport:
    """What one recovery run found and did."""

    lost: list[str] = field(default_factory=list)  # holders of deliveries taken before they were lost
    requeued: int = 0  # queued in a lost worker's hands: enqueued again
    settled_sent: int = 0  # sending, and a Send record shows it reached the service
    resent: int = 0  # sending, and no Send record: enqueued again
    unknown: int = 0  # sending, no Send record, and records that cannot be trusted: for the operator
    forecasts_released: int = 0
    outbox_filed: int = 0  # messages a killed process had recorded but not yet put in the outbox
    outbox_dropped: int = 0  # and those it had not recorded: never accepted

    def as_dict(self) -> dict:
        return asdict(self)


def _held() -> "Q":
    # The partial index delivery_held_idx's own condition, so the planner can use it.
    return Q(status__in=HELD) & ~Q(held_by="")


def _sending_grace(whole_worker: bool) -> timedelta:
    """How old a lost holder's claim must be before nothing more can reach the email service for it.

    A killed pool child sent nothing after its death, but its last call may still be answered
    and recorded late (SES events). A silent worker may be cut off rather than dead: it hands
    nothing over past its claim's lease, and its last call ends within SES's timeouts.
    """
    seconds = send_record_wait_seconds()
    if whole_worker:
        config = settings.AWS_SES_CONFIG
        seconds += settings.SEND_CLAIM_LEASE_SECONDS + (config.connect_timeout or 0) + (config.read_timeout or 0)
    return timedelta(seconds=seconds)


def workers_recover_lost(now: datetime | None = None) -> RecoveryReport:
    """Recover what lost workers held (see the module); a fixed number of queries per lost holder set."""
    now = now or timezone.now()
    report = RecoveryReport()
    if settings.EMAIL_BACKEND == OUTBOX_BACKEND:
        report.outbox_filed, report.outbox_dropped = outbox_deliver_accepted()
    holders = Holders(now)
    if not holders.beats:
        return report
    lost: dict[str, datetime] = {}  # holder -> what it took before this instant is no longer in its hands
    for holder in Delivery.objects.filter(_held()).order_by().values_list("held_by", flat=True).distinct():
        cutoff = holders.lost_before(holder)
        if cutoff is not None:
            lost[holder] = cutoff
    released = _release_forecasts(holders, report)
    if lost:
        _recover_deliveries(lost, holders, now, report)
    if released:
        _enqueue_waiting_for(released)
    if any(value for name, value in report.as_dict().items() if name != "lost"):
        logger.warning("Recovered from lost workers: %s", report.as_dict())
    return report


def _recover_deliveries(lost: dict[str, datetime], holders: Holders, now: datetime, report: RecoveryReport) -> None:
    taken = reduce(
        or_,
        (
            Q(held_by=holder, sending_at__lt=cutoff) | Q(held_by=holder, sending_at=None)
            for holder, cutoff in lost.items()
        ),
    )
    complete = send_records_complete()
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(_held())
            .filter(taken)
            .only("id", "status", "held_by", "sending_at", "error", "updated_at", "ses_message_id", "sent_at")
        )
        report.lost = sorted({d.held_by for d in rows})
        queued = [d.pk for d in rows if d.status == Delivery.Status.QUEUED]
        grace = {True: now - _sending_grace(True), False: now - _sending_grace(False)}
        sending = [
            d
            for d in rows
            if d.status == Delivery.Status.SENDING
            and d.sending_at is not None
            and d.sending_at < grace[holders.whole_worker_lost(d.held_by)]
        ]
        settled = deliveries_settle(sending) if sending else set()
        unsent = [d.pk for d in sending if d.pk not in settled]
        if queued:
            Delivery.objects.filter(id__in=queued, status=Delivery.Status.QUEUED).update(held_by="", updated_at=now)
        if unsent and complete:
            Delivery.objects.filter(id__in=unsent, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.QUEUED, held_by="", sending_at=None, error=RESENT_REASON, updated_at=now
            )
        elif unsent:
            Delivery.objects.filter(id__in=unsent, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.UNKNOWN, held_by="", error=STUCK_REASON, updated_at=now
            )
        again = sorted(queued + (unsent if complete else []))
        if again:
            transaction.on_commit(partial(deliveries_enqueue, again))
    report.requeued = len(queued)
    report.settled_sent = len(settled)
    report.resent = len(unsent) if complete else 0
    report.unknown = 0 if complete else len(unsent)


def _release_forecasts(holders: Holders, report: RecoveryReport) -> set[tuple]:
    """Release `generating` claims of lost holders; the (date, sign) pairs released."""
    claims = Forecast.objects.filter(status=Forecast.Status.GENERATING).exclude(claimed_by="")
    lost = []
    for pk, day, sign, holder, claimed_at in claims.values_list("pk", "date", "sign", "claimed_by", "claimed_at"):
        cutoff = holders.lost_before(holder)
        if cutoff is not None and (claimed_at is None or claimed_at < cutoff):
            lost.append((pk, day, sign, claimed_at))
    if not lost:
        return set()
    # Only claims still the lost holders': one taken over meanwhile has a new claimed_at.
    still = reduce(or_, (Q(pk=pk, claimed_at=claimed_at) for pk, _, _, claimed_at in lost))
    Forecast.objects.filter(still, status=Forecast.Status.GENERATING).update(claimed_at=None, claimed_by="")
    report.forecasts_released = len(lost)
    return {(day, sign) for _, day, sign, _ in lost}


def _enqueue_waiting_for(pairs: set[tuple]) -> None:
    """Enqueue the queued deliveries nobody holds that wait for these (date, sign) forecasts."""
    waiting = [
        pk
        for pk, day, sign in Delivery.objects.filter(
            status=Delivery.Status.QUEUED,
            held_by="",
            local_date__in={day for day, _ in pairs},
            subscription__sign__in={sign for _, sign in pairs},
        )
        .order_by()
        .values_list("id", "local_date", "subscription__sign")
        if (day, sign) in pairs
    ]
    if waiting:
        transaction.on_commit(partial(deliveries_enqueue, waiting))
