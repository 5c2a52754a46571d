"""The send's threads: one SES call per email handed over, and its answer to come.

SES calls wait on the network, so a batch keeps up to SEND_CONCURRENCY of them in flight on a
process's send threads (forecasts/sending/send.py hands them over and records the answers).
"""

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from forecasts.models import Delivery, Forecast
from forecasts.sending.ratelimit import Slot
from forecasts.sending.ses import SendError, SendErrorKind, classify_send_error


@dataclass(frozen=True)
class Sent:
    message_id: str


def send_now(connection, message) -> Sent | SendError:
    """One send call (on a send thread): the SES message id, or what went wrong."""
    try:
        count = connection.send_messages([message])
    except Exception as exc:
        return classify_send_error(exc)
    if not count:
        return SendError(SendErrorKind.PERMANENT, "The email backend accepted no recipient")
    # django-ses stores the SES MessageId on the message it sent.
    return Sent(str(message.extra_headers.get("message_id", "")))


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def send_pool(size: int) -> ThreadPoolExecutor:
    """This process's send threads (a forked worker child makes its own)."""
    key = (os.getpid(), size)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ses-send")
    return _pools[key]


@dataclass
class InFlight:
    """An email handed to a send thread, and its answer to come."""

    delivery: Delivery
    forecast: Forecast
    message: object
    future: Future | None = None  # None: interrupted while being handed over
    attempt: int = 0
    slot: Slot | None = None  # the shared rate's slot it was sent in
    answered_at: float | None = None  # time.monotonic() when SES's answer came

    def send(self, connection) -> Sent | SendError:
        try:
            return send_now(connection, self.message)
        finally:
            self.answered_at = time.monotonic()  # as the answer comes, not when it is recorded


def answer_of(item: InFlight) -> Sent | SendError:
    """SES's answer for an email handed over, waiting for it if need be."""
    if item.future is None:
        return SendError(SendErrorKind.UNKNOWN_OUTCOME, "Interrupted while handing the email to SES.")
    return item.future.result()
