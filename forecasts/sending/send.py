"""Send: claim a batch's deliveries, render each email, send it through SES under the shared rate, record.

A send claims each Delivery (queued -> sending, CLAIM_CHUNK at a time) before mailing it, so a
duplicated or retried task finds nothing left to send, and a killed worker strands at most one
chunk. What cannot be sent now goes back to the queue with its reason.
"""

import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from datetime import date
from functools import reduce
from operator import or_

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import get_connection
from django.db.models import Q
from django.utils import timezone

from accounts.models import Subscription
from forecasts.backoff import backoff_delay
from forecasts.models import Delivery, Forecast
from forecasts.sending.delivery_status import (
    deliveries_claim_for_sending,
    deliveries_record,
    delivery_mark,
)
from forecasts.sending.emails.cache import FORECAST_KEY_FIELDS, send_parts_cache
from forecasts.sending.emails.reader import DailyEmailRenderer
from forecasts.sending.enqueue import deliveries_enqueue
from forecasts.sending.ratelimit import SendSlots, send_rate_limiter
from forecasts.sending.send_threads import InFlight, Sent, answer_of, send_pool
from forecasts.sending.ses import (
    SendError,
    SendErrorKind,
    is_ses_backend,
    max_send_rate,
    reuse_ses_client,
)
from forecasts.sending.stopping import stop_requested
from forecasts.writing.generation import forecast_get_or_generate
from forecasts.writing.generators.offline import OfflineComposer
from forecasts.zodiac import SIGNS_BY_SLUG

logger = logging.getLogger(__name__)

# Throttled sends are retried in the task this many times (each under the shared rate)
# before the rest of the batch goes back to the queue and the task retries later.
THROTTLE_ATTEMPTS = 5
THROTTLE_BACKOFF_BASE_S = 0.2
THROTTLE_BACKOFF_CAP_S = 5.0
# A batch is claimed this many deliveries at a time: a killed worker strands at most one chunk.
CLAIM_CHUNK = 20
# Results are written in bulk, every this many emails or seconds.
FLUSH_EVERY = 25
FLUSH_SECONDS = 2.0


class DeliveriesRetryLater(Exception):
    """Part of a batch could not be sent for now; it is back in the queue and the task should retry."""


class DeliveriesThrottled(DeliveriesRetryLater):
    """SES kept answering "slow down"."""


class _AccountPaused(DeliveriesRetryLater):
    """SES refuses to send for the whole account (quota, pause): stop, and let requeue_stale try later."""


def forecasts_for(
    pairs: Iterable[tuple[date, str]], *, only: Sequence[str] | None = None
) -> dict[tuple[date, str], Forecast]:
    """Ready forecasts for many (date, sign) pairs: one query; each one missing is written now.

    A missed prepare run so costs one generation, not the day's email. A pair left out (another
    worker is still writing it, or generation failed) leaves its deliveries queued with the
    reason shown in the admin, retried by `deliveries_requeue_stale`. No waiting here: a send
    batch must not stall, which is also why it is written by the offline composer (milliseconds,
    grounded by construction) rather than a model that may be slow or down while the batch
    holds its claimed deliveries. With `only`, just those fields are loaded (the others on
    first use, as Django defers them).
    """
    pairs = set(pairs)
    if not pairs:
        return {}
    wanted = reduce(or_, (Q(date=day, sign=sign) for day, sign in pairs))
    ready = Forecast.objects.ready().filter(wanted)
    found = {(f.date, f.sign): f for f in (ready.only(*only) if only else ready)}
    for day, sign in sorted(pairs - found.keys()):
        forecast = forecast_get_or_generate(
            day, sign, wait=0, generator=OfflineComposer(), note="written at send time: no prepared forecast"
        )
        if forecast is not None:
            found[(day, sign)] = forecast
    return found


@dataclass
class SendReport:
    """What one send batch did with its deliveries."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    waiting_for_forecast: int = 0
    requeued: int = 0
    not_claimed: int = 0
    # The shared SES rate (forecasts/sending/ratelimit.py): slots this batch left unused because
    # it came too late for them, and sends answered later than the margin after their slot...
    rate_slots_dropped: int = 0
    rate_held_back: int = 0
    # ...of which the slot a second on had been booked already: SES may have had one more than
    # its rate in that second (a throttle is retried), a sign of requests held up over a second.
    rate_held_back_too_late: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def count_rate_slots(self, slots: SendSlots | None) -> None:
        if slots is None:
            return
        self.rate_slots_dropped = slots.dropped
        self.rate_held_back = slots.held_back
        self.rate_held_back_too_late = slots.held_back_too_late
        if slots.held_back_too_late:
            logger.warning(
                "%s send(s) answered more than a second after their slot of the SES rate: the rate's "
                "schedule was held back too late, so SES may have had more than %g emails in one second",
                slots.held_back_too_late,
                slots.rate,
            )


class _Results:
    """Outcomes of one batch, written in bulk; only rows still `sending` (ours) are touched."""

    def __init__(self, report: SendReport) -> None:
        self.report = report
        self.pending: list[Delivery] = []
        self.flushed_at = time.monotonic()

    def _set(self, delivery: Delivery, status: str, error: str = "", **values) -> None:
        delivery_mark(delivery, status, error, held_by="", **values)
        self.pending.append(delivery)

    def sent(self, delivery: Delivery, forecast: Forecast, message_id: str) -> None:
        # forecast_id, not forecast: the relation's descriptor checks the instance, per email.
        self._set(
            delivery, Delivery.Status.SENT, forecast_id=forecast.pk, ses_message_id=message_id, sent_at=timezone.now()
        )
        self.report.sent += 1

    def failed(self, delivery: Delivery, reason: str) -> None:
        self._set(delivery, Delivery.Status.FAILED, reason)
        self.report.failed += 1

    def unknown(self, delivery: Delivery, reason: str) -> None:
        self._set(delivery, Delivery.Status.UNKNOWN, reason)
        self.report.unknown += 1

    def cancelled(self, delivery: Delivery, reason: str) -> None:
        self._set(delivery, Delivery.Status.CANCELLED, reason)
        self.report.cancelled += 1

    def requeue(self, deliveries: Iterable[Delivery], reason: str) -> None:
        for delivery in deliveries:
            self._set(delivery, Delivery.Status.QUEUED, reason, sending_at=None)
            self.report.requeued += 1

    def recorded(self) -> None:
        """The pending outcomes were written (with the next claim)."""
        self.pending = []
        self.flushed_at = time.monotonic()

    def flush(self, force: bool = False) -> None:
        due = len(self.pending) >= FLUSH_EVERY or time.monotonic() - self.flushed_at > FLUSH_SECONDS
        if self.pending and (force or due):
            deliveries_record(self.pending)
            self.pending = []
        self.flushed_at = time.monotonic()


def _claim(delivery_ids: Sequence[int], results: _Results) -> list[Delivery]:
    """queued -> sending for the ids no other worker has; returns those deliveries, with their
    readers. The outcomes not yet written go in the same statement."""
    claimed = deliveries_claim_for_sending(delivery_ids, timezone.now(), record=results.pending)
    results.recorded()
    return claimed


class _Sender:
    """One batch's sending kit: one open email connection, one renderer, the forecasts seen,
    and up to SEND_CONCURRENCY emails in flight at once."""

    def __init__(self, connection=None) -> None:
        self.connection = connection
        self.renderer = DailyEmailRenderer(cache=send_parts_cache)
        self.slots: SendSlots | None = None
        self.concurrency = 1
        self._forecasts: dict[tuple[date, str], Forecast | None] = {}
        self._open = False

    def open(self) -> None:
        if not self._open:
            self.connection = self.connection or get_connection()
            reuse_ses_client(self.connection)
            self.connection.open()
            rate = max_send_rate(self.connection)
            self.slots = SendSlots(send_rate_limiter(), rate) if rate else None
            # SES calls wait on the network, so a few at once keep one worker busy. django-ses
            # shares one thread-safe boto3 client; other backends send one at a time.
            if is_ses_backend(self.connection):
                self.concurrency = max(1, settings.SEND_CONCURRENCY)
            self._open = True

    def submit(self, item: InFlight) -> Future:
        """Send on a send thread; in this thread when sending one at a time."""
        if self.concurrency > 1:
            return send_pool(self.concurrency).submit(item.send, self.connection)
        future: Future = Future()
        future.set_result(item.send(self.connection))
        return future

    def close(self) -> None:
        if self._open:
            self.connection.close()

    def forecasts(self, pairs: set[tuple[date, str]]) -> dict[tuple[date, str], Forecast | None]:
        missing = pairs - self._forecasts.keys()
        if missing:
            # Rendered emails are cached per process by the forecast's key fields (send_parts_cache).
            found = forecasts_for(missing, only=FORECAST_KEY_FIELDS)
            self._forecasts.update({pair: found.get(pair) for pair in missing})
        return self._forecasts


def deliveries_send(
    delivery_ids: Sequence[int],
    *,
    connection=None,
    time_budget: float | None = None,
    continue_in_new_task: bool = True,
) -> SendReport:
    """Send the given deliveries that are still queued: claim, render, send, record.

    Deliveries are claimed CLAIM_CHUNK at a time, so a worker killed mid-batch leaves at most
    one chunk in "sending" (to become unknown); the rest stay queued for the redelivered task.
    Deliveries another worker holds, or already sent, are skipped. Raises DeliveriesThrottled /
    DeliveriesRetryLater after putting the unsent rest back in the queue, so the task retries
    with backoff. When `time_budget` (default: half the task's soft time limit) runs out, the
    rest is handed to a new task.
    """
    report = SendReport()
    pending = list(dict.fromkeys(delivery_ids))
    unique = len(pending)
    budget = time_budget if time_budget is not None else settings.CELERY_TASK_SOFT_TIME_LIMIT * 0.5
    deadline = time.monotonic() + budget
    sender = _Sender(connection)
    results = _Results(report)
    retry: DeliveriesRetryLater | None = None
    continuation: list[int] = []
    try:
        while pending and retry is None:
            if time.monotonic() > deadline or stop_requested():
                continuation = pending  # never claimed: still queued
                break
            chunk, pending = pending[:CLAIM_CHUNK], pending[CLAIM_CHUNK:]
            # The claim's lease: past it no email of the chunk is handed over (the rest goes back
            # to the queue), so recovery knows when a lost worker can no longer be sending them.
            chunk_deadline = min(deadline, time.monotonic() + settings.SEND_CLAIM_LEASE_SECONDS)
            # Writes the previous chunk's outcomes too: a chunk's stay in "sending" ends when
            # the next one's begins, in one statement.
            claimed = _claim(chunk, results)
            report.claimed += len(claimed)
            if not claimed:
                continue
            retry, paused = _send_claimed(claimed, results, sender, chunk_deadline)
            if paused:
                continuation = paused + pending
                break
    finally:
        try:
            # Also on a soft time limit: what was sent is recorded, the rest is back in the
            # queue; only what a killed process leaves in "sending" is truly unknown.
            results.flush(force=True)
        finally:
            sender.close()
            report.count_rate_slots(sender.slots)
    report.not_claimed = unique - report.claimed
    if continuation and continue_in_new_task:
        deliveries_enqueue(continuation)
    if retry is not None and not isinstance(retry, _AccountPaused):
        raise retry
    return report


def _send_claimed(
    deliveries: list[Delivery], results: _Results, sender: _Sender, deadline: float
) -> tuple[DeliveriesRetryLater | None, list[int]]:
    """Send claimed deliveries in order; returns (an error for the task to retry on, ids paused for a new task).

    Deliveries of readers who left meanwhile are cancelled; those whose forecast is not ready
    go back to the queue with the reason; the rest go to `_send_ready`.
    """
    active = []
    for delivery in deliveries:
        if delivery.subscription.status == Subscription.Status.ACTIVE:
            active.append(delivery)
        else:
            results.cancelled(delivery, f"Not sent: the subscription is {delivery.subscription.status}")
    forecasts = sender.forecasts({(d.local_date, d.subscription.sign) for d in active}) if active else {}
    ready = []
    for delivery in active:
        forecast = forecasts.get((delivery.local_date, delivery.subscription.sign))
        if forecast is not None:
            ready.append((delivery, forecast))
            continue
        results.report.waiting_for_forecast += 1
        results.requeue(
            [delivery],
            f"Waiting for the {SIGNS_BY_SLUG[delivery.subscription.sign].name} forecast of {delivery.local_date}: "
            f"none is ready yet (retried every {settings.DELIVERY_STALE_QUEUED_MINUTES} minutes)",
        )
    if not ready:
        return None, []
    queue = [delivery for delivery, _ in ready]
    try:
        sender.open()
    except Exception as exc:  # the email backend or the rate's cache cannot be reached: nothing was sent
        logger.exception("Could not open the email connection")
        results.requeue(queue, f"Could not start sending: {type(exc).__name__}: {exc}")
        return DeliveriesRetryLater(str(exc)), []
    return _send_ready(deque(ready), results, sender, deadline)


PAUSED = "Sending paused: the batch's time budget was used up; continued in a new task"
STOPPING = "Sending paused: the worker is shutting down; continued in a new task"


@dataclass
class _Stop:
    """Why a batch stops sending: the reason given to what goes back to the queue, the error for
    the task to retry on, and whether the rest is handed to a new task right away."""

    reason: str
    error: DeliveriesRetryLater | None = None
    continue_now: bool = False


def _send_ready(
    waiting: deque, results: _Results, sender: _Sender, deadline: float
) -> tuple[DeliveriesRetryLater | None, list[int]]:
    """Render, take a slot of the shared rate and hand each email to a send thread, keeping up to
    `sender.concurrency` in flight; record each answer as it comes.

    When sending cannot go on, nothing more is handed over; what is in flight is waited for and
    recorded, and only emails never handed over go back to the queue: an email a thread may be
    sending is never put back, so it can never be sent twice.
    """
    in_flight: deque[InFlight] = deque()
    stop: _Stop | None = None
    requeued_now: list[Delivery] = []
    try:
        while waiting or in_flight:
            answered = None  # taken off in_flight with its answer, not yet recorded
            try:
                if waiting and stop is None and len(in_flight) < sender.concurrency:
                    stop = _hand_over(waiting, in_flight, results, sender, deadline)
                    continue
                if not in_flight:
                    break
                outcome = answer_of(in_flight[0])
                answered = in_flight.popleft()
                stop = _record(answered, outcome, in_flight, results, sender, deadline, stop, requeued_now)
            except Exception as exc:
                # Raised outside the send call itself (the rate limiter's store, a time limit
                # while waiting): stop handing over; an email whose answer was a throttle being
                # retried was not sent, so it goes back to the queue with the rest.
                stop = stop or _Stop(
                    f"Interrupted before sending: {type(exc).__name__}: {exc}", DeliveriesRetryLater(str(exc))
                )
                if answered is not None and not any(item is answered for item in in_flight):
                    results.requeue([answered.delivery], stop.reason)
                if isinstance(exc, SoftTimeLimitExceeded):
                    raise
            results.flush()
    finally:
        # Only after a time limit: wait for what the send threads hold, and record it.
        draining = stop or _Stop(PAUSED)
        while in_flight:
            outcome = answer_of(in_flight[0])
            _record(in_flight.popleft(), outcome, in_flight, results, sender, deadline, draining, requeued_now)
        rest = [delivery for delivery, _ in waiting]
        if rest:
            results.requeue(rest, draining.reason)
    if stop is None:
        return None, []
    if stop.continue_now:
        return None, [d.pk for d in requeued_now + rest]
    return stop.error, []


def _hand_over(waiting: deque, in_flight: deque, results: _Results, sender: _Sender, deadline: float) -> _Stop | None:
    """Render the next email, take its slot and hand it to a send thread; a _Stop if it cannot go."""
    delivery, forecast = waiting[0]
    if stop_requested():
        return _Stop(STOPPING, continue_now=True)
    if time.monotonic() > deadline:
        return _Stop(PAUSED, continue_now=True)
    try:
        message = sender.renderer.message(delivery.subscription, forecast, delivery)
    except Exception as exc:
        logger.exception("Delivery %s could not be rendered", delivery.pk)
        waiting.popleft()
        results.failed(delivery, f"The email could not be rendered: {type(exc).__name__}: {exc}")
        return None
    slot = None
    if sender.slots is not None and (slot := sender.slots.take(deadline)) is None:
        return _Stop(PAUSED, continue_now=True)
    waiting.popleft()
    item = InFlight(delivery, forecast, message, slot=slot)
    in_flight.append(item)  # handed over from here on: never put back in the queue
    item.future = sender.submit(item)
    return None


def _record(
    item: InFlight,
    outcome: Sent | SendError,
    in_flight: deque,
    results: _Results,
    sender: _Sender,
    deadline: float,
    stop: _Stop | None,
    requeued_now: list[Delivery],
) -> _Stop | None:
    """Record one answer from SES; throttling is retried (with backoff, under the shared rate)
    while the batch goes on. Returns the batch's _Stop, if it has to stop now or had to already."""
    delivery = item.delivery
    if item.slot is not None:
        sender.slots.answered(item.slot, at=item.answered_at)
    if isinstance(outcome, Sent):
        results.sent(delivery, item.forecast, outcome.message_id)
        return stop
    if outcome.kind is SendErrorKind.PERMANENT:
        results.failed(delivery, outcome.reason)
        return stop
    if outcome.kind is SendErrorKind.UNKNOWN_OUTCOME:
        results.unknown(delivery, outcome.reason + " Not resent automatically, to never mail twice.")
        reason = f"Put back after an uncertain send: {outcome.reason}"
        return stop or _Stop(reason, DeliveriesRetryLater(outcome.reason))
    if outcome.kind is SendErrorKind.THROTTLED and stop is None and item.attempt + 1 < THROTTLE_ATTEMPTS:
        pause = backoff_delay(item.attempt, THROTTLE_BACKOFF_BASE_S, cap=THROTTLE_BACKOFF_CAP_S)
        if time.monotonic() + pause <= deadline:
            time.sleep(pause)
            slot = None
            if sender.slots is None or (slot := sender.slots.take(deadline)) is not None:
                item.attempt += 1
                item.future, item.slot, item.answered_at = None, slot, None
                in_flight.append(item)  # handed over again from here on
                item.future = sender.submit(item)
                return None
        results.requeue([delivery], PAUSED)
        requeued_now.append(delivery)
        return _Stop(PAUSED, continue_now=True)
    if outcome.kind is SendErrorKind.ACCOUNT:
        # Nothing can be sent until SES allows it again; requeue_stale tries again later.
        reason, error = f"SES refuses to send for now: {outcome.reason}", _AccountPaused(outcome.reason)
    elif outcome.kind is SendErrorKind.THROTTLED:
        reason, error = f"Throttled by SES, retrying: {outcome.reason}", DeliveriesThrottled(outcome.reason)
    else:
        reason, error = f"Temporary error, retrying: {outcome.reason}", DeliveriesRetryLater(outcome.reason)
    results.requeue([delivery], reason)
    return stop or _Stop(reason, error)
