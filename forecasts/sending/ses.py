"""What the send path needs to know about SES: its maximum rate, and what each error means.

Sending itself goes through Django's email backend (django-ses `SESBackend` in production, the
local outbox by default), so the same code sends through either.
"""

import enum
import importlib.util
import logging
import os
import smtplib
import sys
import threading
import time
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
)
from botocore.exceptions import SSLError as BotoSSLError
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

RATE_CACHE_KEY = "horoscope:ses-max-send-rate"
RATE_CACHE_SECONDS = 600
# SES's lowest rate (the sandbox): used when GetAccount cannot be read, so sending goes on slowly.
FALLBACK_RATE = 1.0

THROTTLING_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
# The message or its address is refused: trying again sends nothing.
PERMANENT_CODES = {
    "MessageRejected",
    "MailFromDomainNotVerified",
    "MailFromDomainNotVerifiedException",
    "InvalidParameterValue",
    "BadRequestException",
}
# The whole account cannot send right now (daily quota reached, sending paused): wait, for everyone.
ACCOUNT_CODES = {
    "LimitExceededException",
    "SendingPausedException",
    "AccountSendingPausedException",
    "AccountSuspendedException",
    "ConfigurationSetSendingPausedException",
}


class SendErrorKind(enum.Enum):
    THROTTLED = "throttled"  # retry soon, under the shared rate
    PERMANENT = "permanent"  # record as failed, never retry
    ACCOUNT = "account"  # nothing can be sent for now: put the batch back and wait
    TRANSIENT = "transient"  # SES was not reached or answered an error: safe to retry
    UNKNOWN_OUTCOME = "unknown"  # the request may have been accepted: never resend automatically


@dataclass(frozen=True)
class SendError:
    kind: SendErrorKind
    reason: str


def classify_send_error(exc: Exception) -> SendError:
    """Say what a send exception means for the delivery (see SendErrorKind)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = error.get("Message", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        reason = f"SES {code or status}: {message}".strip()
        if code in THROTTLING_CODES or "maximum sending rate exceeded" in message.lower() or status == 429:
            return SendError(SendErrorKind.THROTTLED, reason)
        if code in ACCOUNT_CODES:
            return SendError(SendErrorKind.ACCOUNT, reason)
        if code in PERMANENT_CODES or 400 <= status < 500:
            return SendError(SendErrorKind.PERMANENT, reason)
        return SendError(SendErrorKind.TRANSIENT, reason)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | BotoSSLError | ProxyConnectionError):
        return SendError(SendErrorKind.TRANSIENT, f"SES not reachable: {exc}")
    if isinstance(exc, HTTPClientError):
        # ReadTimeoutError, ConnectionClosedError...: the request went out, and SES may have
        # accepted it before the answer was lost.
        return SendError(SendErrorKind.UNKNOWN_OUTCOME, f"No answer from SES after sending: {exc}")
    if isinstance(exc, BotoCoreError):
        # Credentials, parameter validation...: raised before any request is made.
        return SendError(SendErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return SendError(SendErrorKind.PERMANENT, f"Recipient refused: {exc}")
    if isinstance(exc, OSError | smtplib.SMTPException):
        return SendError(SendErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError | UnicodeError):
        # Raised while building the message, e.g. an address that cannot be encoded.
        return SendError(SendErrorKind.PERMANENT, f"Message could not be built: {exc}")
    # Anything else (a time limit striking mid-call...) may have interrupted a request in flight.
    return SendError(SendErrorKind.UNKNOWN_OUTCOME, f"Interrupted while sending: {type(exc).__name__}: {exc}")


def is_ses_backend(connection) -> bool:
    try:
        from django_ses import SESBackend
    except ImportError:  # pragma: no cover - django-ses is a runtime dependency
        return False
    return isinstance(connection, SESBackend)


# boto3 clients made by reuse_ses_client, by process and configuration.
_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _mark_dkim_absent() -> None:
    """django-ses tries `import dkim` (dkimpy, for signing in the app) on every email. Without
    dkimpy each failed import searches the whole sys.path again, a tenth of a millisecond an
    email; a None in sys.modules makes the import fail at once, as Python documents. SES signs
    with Easy DKIM itself."""
    if "dkim" not in sys.modules and importlib.util.find_spec("dkim") is None:
        sys.modules["dkim"] = None  # type: ignore[assignment]


def reuse_ses_client(connection) -> None:
    """Give a django-ses backend this process's boto3 client for its configuration, made once.

    django-ses builds a new boto3 session and client on every open(): ~80 ms of CPU once per
    send batch, more than sending the batch's hundred emails takes. boto3 clients are
    thread-safe and keep their HTTP connections, so one per process and configuration does;
    the process id in the key keeps a forked worker child from using its parent's sockets.
    Other backends, and a backend already open, are left as they are.
    """
    if not is_ses_backend(connection) or connection.connection is not None:
        return
    _mark_dkim_absent()
    try:
        key = (
            os.getpid(),
            connection._session_profile,
            connection._access_key_id,
            connection._access_key,
            connection._session_token,
            connection._region_name,
            connection._endpoint_url,
            connection._use_ses_v2,
            connection._config,  # botocore Config hashes by identity
        )
    except AttributeError:  # a django-ses without these attributes: let it build its own client
        return
    client = _clients.get(key)
    if client is None:
        connection.open()
        with _clients_lock:
            client = _clients.setdefault(key, connection.connection)
    connection.connection = client


_memo: dict[str, tuple[float, float]] = {}


def max_send_rate(connection) -> float | None:
    """Emails per second allowed across all workers, or None for a backend without a limit.

    SES_MAX_SEND_RATE when set, else SES's own SendQuota.MaxSendRate from GetAccount, cached
    for ten minutes (the quota changes only when AWS raises it).
    """
    if settings.SES_MAX_SEND_RATE > 0:
        return float(settings.SES_MAX_SEND_RATE)
    if not is_ses_backend(connection):
        return None
    memo = _memo.get(RATE_CACHE_KEY)
    if memo and memo[1] > time.monotonic():
        return memo[0]
    rate = cache.get(RATE_CACHE_KEY)
    if rate is None:
        try:
            connection.open()
            account = connection.connection.get_account()
            rate = float(account["SendQuota"]["MaxSendRate"])
            if rate <= 0:
                raise ValueError(f"MaxSendRate is {rate}")
        except Exception as exc:
            logger.warning("SES GetAccount failed (%s); sending at %.1f/s until it answers", exc, FALLBACK_RATE)
            _memo[RATE_CACHE_KEY] = (FALLBACK_RATE, time.monotonic() + 60)
            return FALLBACK_RATE
        cache.set(RATE_CACHE_KEY, rate, RATE_CACHE_SECONDS)
    _memo[RATE_CACHE_KEY] = (rate, time.monotonic() + 60)
    return rate


def forget_max_send_rate() -> None:
    """Drop the cached rate (tests, or after AWS raised the quota)."""
    _memo.clear()
    cache.delete(RATE_CACHE_KEY)
