"""SES events (bounces, complaints, deliveries) posted by SNS to /ses/events/.

Every post is checked before anything changes, and anything that fails a check is answered
400 with the reason:
- the body is JSON as `horoscope_site.json_input` accepts it (no deep nesting, NaN, repeated
  keys...) and an SNS message with the fields its type requires;
- its TopicArn is one of AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS;
- its SigningCertURL is https on a host matching AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS ("*" is
  one DNS label) with SNS's certificate path; the certificate is fetched once and cached;
- its Signature verifies: RSA PKCS#1 v1.5 over SNS's canonical string of the message's
  fields, with SHA1 (SignatureVersion 1) or SHA256 (SignatureVersion 2).
django-ses's own webhook checks version 1 only, hence this view.

Effects: a permanent bounce or a complaint suppresses the reader's subscription; a transient
bounce is counted; a delivery marks the Delivery delivered; a send (SES accepted the message)
marks a Delivery still sending or unknown as sent, so one stranded by a killed worker is never
resent. Each SNS message is logged once in SesEvent by its MessageId, so SNS's retries and
duplicates change nothing twice.
"""

import base64
import binascii
import logging
import re
import ssl
import threading
import urllib.request
from collections import OrderedDict
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import Subscription
from accounts.services import subscription_suppress
from forecasts.models import Delivery, SesEvent
from forecasts.sending.delivery_status import delivery_mark
from horoscope_site.json_input import JsonInputError, json_input_loads

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_CERT_BYTES = 64 * 1024
FETCH_TIMEOUT_S = 5.0
CERT_CACHE_SIZE = 32
CERT_PATH_RE = re.compile(r"^/SimpleNotificationService-[A-Za-z0-9]+\.pem$")
MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The fields SNS signs, in its canonical order (Subject only when the message has one).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
OPTIONAL_FIELDS = {"Subject"}
# SignatureVersion 1 is SHA1 by SNS's definition; version 2 is SHA256.
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsRejected(Exception):
    """A post that is not a genuine SNS message from a trusted topic: answered 400."""


def sns_parse(body: bytes) -> dict:
    """The SNS message in a request body, with every field its type needs, all strings."""
    if len(body) > MAX_BODY_BYTES:
        raise SnsRejected("body too large")
    try:
        envelope = json_input_loads(body, expect=dict)
    except JsonInputError as exc:
        raise SnsRejected(f"body is not acceptable JSON: {exc}") from None
    kind = envelope.get("Type")
    if kind not in MESSAGE_TYPES:
        raise SnsRejected("unknown or missing Type")
    required = [name for name in SIGNED_FIELDS[kind] if name not in OPTIONAL_FIELDS]
    required += ["Signature", "SignatureVersion", "SigningCertURL"]
    missing = [name for name in required if not isinstance(envelope.get(name), str) or not envelope[name]]
    if missing:
        raise SnsRejected(f"missing fields: {', '.join(missing)}")
    if "Subject" in envelope and not isinstance(envelope["Subject"], str | None):
        raise SnsRejected("Subject is not a string")
    return envelope


def host_is_trusted(host: str | None) -> bool:
    """Does `host` match AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS? "*" matches exactly one DNS label."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    for pattern in settings.AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS:
        regex = re.escape(pattern.lower().rstrip(".")).replace(r"\*", "[a-z0-9-]+")
        if re.fullmatch(regex, host):
            return True
    return False


def sns_url_is_trusted(url: str, path_pattern: re.Pattern | None = None) -> bool:
    """https, no credentials, a trusted host, and (for certificates) SNS's path."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    if parts.scheme != "https" or parts.username or parts.password:
        return False
    if path_pattern is not None and not path_pattern.match(parts.path):
        return False
    return host_is_trusted(parts.hostname)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect could lead off the trusted host


def sns_fetch(url: str, max_bytes: int = MAX_CERT_BYTES) -> bytes:
    """GET a trusted SNS URL over verified https (AWS_SNS_CA_BUNDLE, else the system's CAs)."""
    if not sns_url_is_trusted(url):
        raise SnsRejected("URL is not a trusted SNS URL")
    context = ssl.create_default_context(cafile=settings.AWS_SNS_CA_BUNDLE)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())
    with opener.open(url, timeout=FETCH_TIMEOUT_S) as response:
        if response.status != 200:
            raise SnsRejected(f"{url} answered {response.status}")
        data = response.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SnsRejected("response too large")
    return data


_cert_cache: OrderedDict[str, x509.Certificate] = OrderedDict()
_cert_lock = threading.Lock()


def sns_certificate(url: str) -> x509.Certificate:
    """The signing certificate at a trusted SigningCertURL, fetched once per process."""
    with _cert_lock:
        if url in _cert_cache:
            _cert_cache.move_to_end(url)
            return _cert_cache[url]
    if not sns_url_is_trusted(url, CERT_PATH_RE):
        raise SnsRejected("SigningCertURL is not a trusted SNS certificate URL")
    try:
        certificate = x509.load_pem_x509_certificate(sns_fetch(url))
    except SnsRejected:
        raise
    except (OSError, ValueError) as exc:
        raise SnsRejected(f"signing certificate unavailable: {exc}") from None
    with _cert_lock:
        _cert_cache[url] = certificate
        while len(_cert_cache) > CERT_CACHE_SIZE:
            _cert_cache.popitem(last=False)
    return certificate


def clear_certificate_cache() -> None:
    with _cert_lock:
        _cert_cache.clear()


def canonical_string(envelope: dict) -> bytes:
    """What SNS signs: "Name\\nvalue\\n" for each signed field present, in order."""
    fields = SIGNED_FIELDS[envelope["Type"]]
    return "".join(
        f"{name}\n{envelope[name]}\n" for name in fields if name in envelope and envelope[name] is not None
    ).encode()


def sns_verify(envelope: dict) -> None:
    """Raise SnsRejected unless the message comes from a trusted topic and its signature is genuine."""
    if envelope["TopicArn"] not in settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS:
        raise SnsRejected("topic is not trusted")
    hash_type = HASHES.get(envelope["SignatureVersion"])
    if hash_type is None:
        raise SnsRejected("unsupported SignatureVersion")
    try:
        signature = base64.b64decode(envelope["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise SnsRejected("Signature is not base64") from None
    certificate = sns_certificate(envelope["SigningCertURL"])
    now = timezone.now()
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SnsRejected("signing certificate is not valid now")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsRejected("signing certificate has no RSA key")
    try:
        public_key.verify(signature, canonical_string(envelope), padding.PKCS1v15(), hash_type())
    except InvalidSignature:
        raise SnsRejected("bad signature") from None


# --- what an event changes --------------------------------------------------------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _addresses(entries) -> list[str]:
    found = (str(_dict(entry).get("emailAddress") or "").strip().lower() for entry in _list(entries))
    return [address for address in found if address]


def _find_delivery(mail: dict) -> Delivery | None:
    message_id = str(mail.get("messageId") or "")
    if message_id:
        delivery = Delivery.objects.select_related("subscription__user").filter(ses_message_id=message_id).first()
        if delivery is not None:
            return delivery
    # Before the send was recorded, the event can still name its delivery by our header.
    for header in _list(mail.get("headers")):
        header = _dict(header)
        if str(header.get("name", "")).lower() == "x-horoscope-delivery" and str(header.get("value", "")).isdigit():
            delivery = (
                Delivery.objects.select_related("subscription__user")
                .filter(pk=int(header["value"]), ses_message_id__in=["", message_id])
                .first()
            )
            destination = {str(a).lower() for a in _list(mail.get("destination"))}
            if delivery is not None and delivery.subscription.user.email.lower() in destination:
                return delivery
    return None


def _subscriptions(delivery: Delivery | None, addresses: list[str]) -> list[Subscription]:
    if delivery is not None:
        return [delivery.subscription]
    if not addresses:
        return []
    return list(Subscription.objects.filter(user__email__in=addresses))


def _suppress(subscriptions: list[Subscription], reason: str) -> int:
    return sum(subscription_suppress(subscription, reason) for subscription in subscriptions)


def _mark(delivery: Delivery | None, status: str, error: str | None = None, **values) -> None:
    if delivery is None:
        return
    delivery_mark(delivery, status, error, **values)
    delivery.save(update_fields=["status", "error", "updated_at", *values])


def _event_time(value, default: datetime) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return parsed if parsed and parsed.tzinfo else default


def _apply(event_type: str, message: dict, mail: dict, delivery: Delivery | None) -> str:
    now = timezone.now()
    if event_type == "Bounce":
        bounce = _dict(message.get("bounce"))
        addresses = _addresses(bounce.get("bouncedRecipients"))
        subscriptions = _subscriptions(delivery, addresses)
        bounce_type = str(bounce.get("bounceType", ""))
        detail = "; ".join(
            str(_dict(r).get("diagnosticCode") or _dict(r).get("status") or "")
            for r in _list(bounce.get("bouncedRecipients"))
        ).strip("; ")
        if bounce_type == "Permanent":
            reason = f"Permanent bounce ({bounce.get('bounceSubType', '')}): {detail}".strip(": ")
            _mark(delivery, Delivery.Status.BOUNCED, reason)
            return f"suppressed {_suppress(subscriptions, reason)} subscription(s) after a permanent bounce"
        Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).update(
            transient_bounce_count=F("transient_bounce_count") + 1
        )
        if delivery is not None:
            delivery.error = f"Transient bounce ({bounce_type} {bounce.get('bounceSubType', '')}): {detail}"[:2000]
            delivery.save(update_fields=["error", "updated_at"])
        return f"counted a transient bounce for {len(subscriptions)} subscription(s)"
    if event_type == "Complaint":
        complaint = _dict(message.get("complaint"))
        subscriptions = _subscriptions(delivery, _addresses(complaint.get("complainedRecipients")))
        kind = complaint.get("complaintFeedbackType") or "complaint"
        reason = f"Complaint ({kind}) reported by the mailbox provider"
        _mark(delivery, Delivery.Status.COMPLAINED, reason)
        return f"suppressed {_suppress(subscriptions, reason)} subscription(s) after a complaint"
    if event_type == "Send":
        # SES accepted the message: the one fact a worker killed during the SendEmail call could not
        # record. Without it a stranded delivery stays unknown and an operator might resend it.
        if delivery is None:
            return "send of an email this site did not record"
        if delivery.status in (Delivery.Status.SENDING, Delivery.Status.UNKNOWN):
            when = _event_time(mail.get("timestamp"), now)
            _mark(delivery, Delivery.Status.SENT, "", sent_at=when, ses_message_id=str(mail.get("messageId") or ""))
            return "marked sent (SES accepted it)"
        return f"send left {delivery.status}"
    if event_type == "Delivery":
        if delivery is None:
            return "delivery of an email this site did not record"
        if delivery.status in (Delivery.Status.SENT, Delivery.Status.SENDING, Delivery.Status.UNKNOWN):
            when = _event_time(_dict(message.get("delivery")).get("timestamp"), now)
            _mark(delivery, Delivery.Status.DELIVERED, delivered_at=when, ses_message_id=mail.get("messageId", ""))
            return "marked delivered"
        return f"delivery left {delivery.status}"
    if event_type == "Reject":
        reason = f"Rejected by SES: {_dict(message.get('reject')).get('reason', '')}".strip(": ")
        _mark(delivery, Delivery.Status.FAILED, reason)
        return "marked failed (rejected by SES)"
    return f"ignored {event_type or 'an unknown'} event"


def ses_event_record(envelope: dict) -> str:
    """Apply one verified SNS Notification carrying an SES event, once; returns what it did."""
    try:
        message = json_input_loads(envelope["Message"])
    except JsonInputError:  # signed by SNS, yet not an event we can read: logged, changes nothing
        message = None
    message = _dict(message)
    event_type = str(message.get("eventType") or message.get("notificationType") or "")
    mail = _dict(message.get("mail"))
    bounce_type = str(_dict(message.get("bounce")).get("bounceType", ""))
    recipients = [str(a) for a in _list(mail.get("destination"))][:50]
    with transaction.atomic():
        event, created = SesEvent.objects.get_or_create(
            sns_message_id=envelope["MessageId"],
            defaults={
                "sns_type": envelope["Type"],
                "topic_arn": envelope["TopicArn"],
                "event_type": event_type[:40],
                "bounce_type": bounce_type[:40],
                "ses_message_id": str(mail.get("messageId") or "")[:200],
                "recipients": recipients,
                "payload": envelope,
            },
        )
        if not created:
            return "duplicate: already applied"
        delivery = _find_delivery(mail) if message else None
        outcome = _apply(event_type, message, mail, delivery) if message else "ignored: not an SES event"
        event.delivery = delivery
        event.outcome = outcome[:255]
        event.save(update_fields=["delivery", "outcome"])
    return outcome


def sns_confirm_subscription(envelope: dict) -> str:
    """Confirm a subscription of a trusted topic by GETting its SubscribeURL (trusted hosts only)."""
    url = envelope["SubscribeURL"]
    if not sns_url_is_trusted(url):
        raise SnsRejected("SubscribeURL is not a trusted SNS URL")
    sns_fetch(url)
    with transaction.atomic():
        SesEvent.objects.get_or_create(
            sns_message_id=envelope["MessageId"],
            defaults={
                "sns_type": envelope["Type"],
                "topic_arn": envelope["TopicArn"],
                "payload": envelope,
                "outcome": "subscription confirmed",
            },
        )
    return "subscription confirmed"


@csrf_exempt
@require_POST
def ses_events(request: HttpRequest) -> HttpResponse:
    """The SNS endpoint: 200 once handled (or already handled), 400 with the reason if not genuine."""
    try:
        envelope = sns_parse(request.body)
        header_type = request.headers.get("x-amz-sns-message-type")
        if header_type and header_type != envelope["Type"]:
            raise SnsRejected("message type header does not match the body")
        sns_verify(envelope)
        if envelope["Type"] == "SubscriptionConfirmation":
            try:
                outcome = sns_confirm_subscription(envelope)
            except (OSError, ValueError) as exc:
                logger.warning("SNS subscription confirmation failed: %s", exc)
                return HttpResponse("could not confirm the subscription", status=503, content_type="text/plain")
        elif envelope["Type"] == "UnsubscribeConfirmation":
            outcome = "unsubscribe confirmation noted"
            logger.info("SNS topic %s unsubscribed this endpoint", envelope["TopicArn"])
        else:
            outcome = ses_event_record(envelope)
    except SnsRejected as exc:
        logger.warning("SNS post rejected: %s", exc)
        return HttpResponseBadRequest(f"rejected: {exc}", content_type="text/plain")
    return HttpResponse(outcome, content_type="text/plain")
