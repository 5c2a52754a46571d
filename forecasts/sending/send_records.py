"""Send records: what the email service said it accepted, and deliveries settled from them.

SES publishes a Send event for every message it accepts (posted to /ses/events/, logged as an
SesEvent by forecasts/sending/ses_events.py); the embedded outbox writes the same record as it
files each message (`send_record_outbox`). So one piece of code, `deliveries_settle`, decides
for deliveries whose sender was lost (still "sending") or that are "unknown" which ones were
mailed: those with a Send record are sent, the others never reached the service.

`send_records_complete` says whether the absence of a record can be trusted: always for the
outbox (it records before it returns), for SES only when its configuration set publishes Send
events (SES_SEND_EVENTS) and once SES_SEND_EVENT_WAIT_SECONDS have passed.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.conf import settings
from django.core.mail import get_connection
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from forecasts.models import Delivery, SesEvent
from forecasts.sending.bulk import update_rows
from forecasts.sending.ses import is_ses_backend

logger = logging.getLogger(__name__)

OUTBOX_SNS_TYPE = "Outbox"  # what marks the outbox's own records among SNS's
SETTLEABLE = (Delivery.Status.SENDING, Delivery.Status.UNKNOWN)
SETTLE_FIELDS = ["status", "ses_message_id", "sent_at", "error", "held_by", "updated_at"]


def _delivery_id(headers: dict) -> int | None:
    value = str(headers.get("X-Horoscope-Delivery") or "")
    return int(value) if value.isdigit() else None


def send_record_outbox(message_id: str, headers: dict, recipients: Sequence[str], at: datetime) -> bool:
    """The outbox accepts a message: log it as SES logs a Send event; False if it could not be."""
    stamp = at.isoformat().replace("+00:00", "Z")
    payload = {
        "eventType": "Send",
        "mail": {"timestamp": stamp, "messageId": message_id, "destination": list(recipients)},
    }
    record = SesEvent(
        sns_message_id=f"outbox-{message_id}"[:100],
        sns_type=OUTBOX_SNS_TYPE,
        topic_arn="",
        event_type="Send",
        ses_message_id=message_id,
        recipients=list(recipients)[:50],
        delivery_id=_delivery_id(headers),
        outcome="accepted by the outbox",
        payload=payload,
    )
    for _ in range(2):
        try:
            with transaction.atomic():
                record.save()
            return True
        except IntegrityError:
            # Not one of our deliveries (a test email, a deleted reader): the record still counts.
            record.delivery_id = None
        except DatabaseError:
            logger.exception("outbox message %s could not be recorded", message_id)
            return False
    return False


def outbox_recorded(message_ids: Iterable[str]) -> list[str]:
    """Which of these outbox message ids have a Send record (one query)."""
    return list(
        SesEvent.objects.filter(sns_type=OUTBOX_SNS_TYPE, ses_message_id__in=list(message_ids)).values_list(
            "ses_message_id", flat=True
        )
    )


def send_records(delivery_ids: Iterable[int]) -> dict[int, tuple[str, datetime]]:
    """Delivery id -> (message id, accepted at) for those with a Send record; one query."""
    found: dict[int, tuple[str, datetime]] = {}
    rows = (
        SesEvent.objects.filter(event_type="Send", delivery_id__in=list(delivery_ids))
        .order_by("received_at")
        .values_list("delivery_id", "ses_message_id", "received_at")
    )
    for delivery_id, message_id, received_at in rows:
        found.setdefault(delivery_id, (message_id, received_at))
    return found


def deliveries_settle(deliveries: Sequence[Delivery]) -> set[int]:
    """Mark sent those of `deliveries` (sending or unknown) that a Send record names; their ids.

    A row that moved on meanwhile (an SES event, a worker recording it) is left as it is.
    """
    records = send_records(d.pk for d in deliveries)
    settled: dict[str, list[Delivery]] = {}
    now = timezone.now()
    for delivery in deliveries:
        if delivery.pk not in records or delivery.status not in SETTLEABLE:
            continue
        message_id, accepted_at = records[delivery.pk]
        settled.setdefault(delivery.status, []).append(delivery)
        delivery.status = Delivery.Status.SENT
        delivery.ses_message_id = message_id
        delivery.sent_at = accepted_at
        delivery.error = ""
        delivery.held_by = ""
        delivery.updated_at = now
    for status, rows in settled.items():
        update_rows(Delivery, rows, SETTLE_FIELDS, only_status=status)
    return {d.pk for rows in settled.values() for d in rows}


def send_records_complete() -> bool:
    """Does a missing Send record mean the email service never accepted the message?"""
    from forecasts.sending.outbox import OutboxEmailBackend

    connection = get_connection()
    if isinstance(connection, OutboxEmailBackend):
        return True
    return is_ses_backend(connection) and settings.SES_SEND_EVENTS


def send_record_wait_seconds() -> float:
    """How long after a send its record may still be on its way (SES events come through SNS)."""
    if settings.SES_SEND_EVENTS and is_ses_backend(get_connection()):
        return settings.SES_SEND_EVENT_WAIT_SECONDS
    return 0.0
