"""The embedded email backend: every message becomes an .eml file in a local outbox.

A person can open the files with any mail client, or read them in the browser at
/outbox/ while the site runs with this backend (see forecasts/web/outbox_views.py).
Like SES, it gives each message an id (on the message, where django-ses puts SES's) and
records what it accepted as SES's Send events do (forecasts/sending/send_records.py), so a
lost worker's deliveries are settled by the same code in local mode as with SES.
"""

import os
import threading
import uuid
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage as ParsedMessage
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from forecasts.sending.send_records import send_record_outbox

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
            name = f"{message_id}.eml"
            data = message.message().as_bytes(linesep="\r\n")
            # Write then rename, so a reader never sees half a message.
            partial = self.outbox_dir / f".{name}.part"
            with _lock:
                partial.write_bytes(data)
                partial.rename(self.outbox_dir / name)
            send_record_outbox(message_id, message.extra_headers, message.recipients(), now)
            message.extra_headers["message_id"] = message_id  # as django-ses stores SES's MessageId
            sent += 1
        return sent


def outbox_messages(outbox_dir: Path | None = None) -> list[Path]:
    """The outbox's .eml files, newest first."""
    folder = Path(outbox_dir or settings.EMAIL_OUTBOX_DIR)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.eml"), reverse=True)


def read_message(path: Path) -> ParsedMessage:
    """Parse one outbox file into a standard-library email message."""
    return message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[return-value]
