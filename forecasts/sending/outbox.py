"""The embedded email backend: every message becomes an .eml file in a local outbox.

A person can open the files with any mail client, or read them in the browser at
/outbox/ while the site runs with this backend (see forecasts/web/outbox_views.py).
Like SES, it gives each message an id (on the message, where django-ses puts SES's) and
records what it accepted as SES's Send events do (forecasts/sending/send_records.py), so a
lost worker's deliveries are settled by the same code in local mode as with SES.
"""

import os
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from email import message_from_bytes, policy
from email.message import EmailMessage as ParsedMessage
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from forecasts.sending.send_records import outbox_recorded, send_record_outbox

OUTBOX_BACKEND = "forecasts.sending.outbox.OutboxEmailBackend"
_lock = threading.Lock()


class OutboxEmailBackend(BaseEmailBackend):
    """Write each message as `<UTC timestamp>-<id>.eml` into EMAIL_OUTBOX_DIR, and record its Send."""

    def __init__(self, fail_silently: bool = False, outbox_dir: str | os.PathLike | None = None, **kwargs):
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.outbox_dir = Path(outbox_dir or settings.EMAIL_OUTBOX_DIR)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            now = timezone.now()
            message_id = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}"
            data = message.message().as_bytes(linesep="\r\n")
            # Accepted is: written aside, then its Send record. Only then is it put in the outbox
            # (a reader never sees half a message). A process killed in between leaves a .part
            # file that `outbox_deliver_accepted` puts in the outbox if it was recorded, else
            # drops: so the record says exactly what readers get, and a resend never doubles.
            partial = self.outbox_dir / f".{message_id}.eml.part"
            partial.write_bytes(data)
            if not send_record_outbox(message_id, message.extra_headers, message.recipients(), now):
                partial.unlink(missing_ok=True)
                raise OutboxNotAccepted(f"the outbox could not record message {message_id}; not sent")
            with _lock:
                partial.rename(self.outbox_dir / f"{message_id}.eml")
            message.extra_headers["message_id"] = message_id  # as django-ses stores SES's MessageId
            sent += 1
        return sent


class OutboxNotAccepted(OSError):
    """The message could not be recorded, so it was not put in the outbox (a temporary error)."""


# A .part file this old was left by a process that died between writing it and filing it
# (a recording waits at most the database's lock timeout, 20 s on SQLite).
ABANDONED_AFTER_S = 30


def outbox_deliver_accepted(outbox_dir: Path | None = None) -> tuple[int, int]:
    """File abandoned .part messages that have a Send record, drop the others; (filed, dropped)."""
    folder = Path(outbox_dir or settings.EMAIL_OUTBOX_DIR)
    if not folder.is_dir():
        return 0, 0
    cutoff = time.time() - ABANDONED_AFTER_S
    parts = {}
    for path in folder.glob(".*.eml.part"):
        with suppress(OSError):
            if path.stat().st_mtime < cutoff:
                parts[path.name[1 : -len(".eml.part")]] = path
    if not parts:
        return 0, 0
    recorded = set(outbox_recorded(parts))
    for message_id, path in parts.items():
        with suppress(OSError):
            if message_id in recorded:
                path.rename(folder / f"{message_id}.eml")
            else:
                path.unlink()
    return len(recorded), len(parts) - len(recorded)


def outbox_messages(outbox_dir: Path | None = None) -> list[Path]:
    """The outbox's .eml files, newest first."""
    folder = Path(outbox_dir or settings.EMAIL_OUTBOX_DIR)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.eml"), reverse=True)


def read_message(path: Path) -> ParsedMessage:
    """Parse one outbox file into a standard-library email message."""
    return message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[return-value]
