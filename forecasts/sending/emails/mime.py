"""The MIME fast path: a forecast's email serialised once by Django, each reader's parts filled in."""

import email
import email.message
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils.functional import cached_property

from forecasts.sending.emails.placeholders import TOKEN_RE, Flat, compile_template, fill_flat, flatten, token

# Where each reader's values go in a forecast's serialised email (see MimeTemplate).
TEXT_SLOT = "\u2063hz:text-body\u2063"  # not ASCII, so the part is declared 8bit as a real body is
HTML_SLOT = "\u2063hz:html-body\u2063"
RECIPIENT_SLOT = "hz-recipient@hz-slot.invalid"
HEADER_SLOTS = ("to", "date", "message_id", "unsubscribe_url", "delivery")
# RFC 5322's line limit: Django switches a body with a longer line to quoted-printable.
MAX_LINE_BYTES = 998
# Addresses that Django writes into the To header exactly as they are (no quoting, no IDNA).
PLAIN_ADDRESS_RE = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PLAIN_HEADER_VALUE_RE = re.compile(r"[\x20-\x7e]{1,900}")  # printable ASCII on one line


def daily_headers(message_id: str, date_header: str, unsubscribe: str | None, delivery_id: str | None) -> dict:
    """The daily email's headers besides Subject, From and To."""
    headers = {"Message-ID": message_id, "Date": date_header}
    if unsubscribe:
        # RFC 8058 one-click: mailbox providers POST to the URL, with no cookies.
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if settings.AWS_SES_CONFIGURATION_SET and not callable(settings.AWS_SES_CONFIGURATION_SET):
        headers["X-SES-CONFIGURATION-SET"] = settings.AWS_SES_CONFIGURATION_SET
    if delivery_id:
        # SES events carry the headers: lets an event find its delivery even without a message id.
        headers["X-Horoscope-Delivery"] = delivery_id
    return headers


@dataclass(frozen=True)
class MimeTemplate:
    """A forecast's email serialised once by Django and the standard library, each reader's parts left open.

    Building and folding a MIME tree costs more per email than the SES call itself. Django
    writes a UTF-8 body as 8bit, i.e. unchanged; so Django's bytes for one reader are this
    template with their headers and bodies put in. `fill` does exactly that, and answers None
    for anything Django would have written differently (a body line too long for 8bit, an
    address it would quote or encode, a value holding the boundary), so those readers' emails
    are built by Django itself. The tests compare both ways byte for byte.
    """

    head: Flat  # up to the text part's body
    middle: str  # between the text and the HTML bodies
    tail: str
    boundary: str

    @classmethod
    def build(cls, subject: str) -> "MimeTemplate | None":
        if callable(settings.AWS_SES_CONFIGURATION_SET):  # django-ses would add its header per message
            return None
        headers = daily_headers(token("message_id"), token("date"), token("unsubscribe_url"), token("delivery"))
        probe = EmailMultiAlternatives(
            subject=subject,
            body=TEXT_SLOT,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[RECIPIENT_SLOT],
            headers=headers,
        )
        probe.attach_alternative(HTML_SLOT, "text/html")
        mime = probe.message()
        raw = mime.as_bytes(linesep="\r\n").decode("utf-8")
        if raw.count(TEXT_SLOT) != 1 or raw.count(HTML_SLOT) != 1 or raw.count(RECIPIENT_SLOT) != 1:
            return None
        head, rest = raw.split(TEXT_SLOT)
        middle, tail = rest.split(HTML_SLOT)
        head = head.replace(RECIPIENT_SLOT, token("to"))
        encoding = "Content-Transfer-Encoding: 8bit\r\n"
        if not head.endswith(encoding + "\r\n") or not middle.endswith(encoding + "\r\n"):
            return None
        if sorted(TOKEN_RE.findall(head)) != sorted(HEADER_SLOTS) or TOKEN_RE.search(middle + tail):
            return None
        # Each body ends a line of its own and the parts between them are short lines: a body's
        # lines can then be bounded alone (fill's bodies_fit).
        if not (middle.startswith("\r\n") and tail.startswith("\r\n")):
            return None
        if max(len(line.encode()) for line in (middle + tail).split("\r\n")) > MAX_LINE_BYTES:
            return None
        return cls(
            head=flatten(compile_template(head), frozenset()), middle=middle, tail=tail, boundary=mime.get_boundary()
        )

    def fill(
        self, to: str, header_values: dict[str, str], text: str, html_body: str, *, bodies_fit: bool = False
    ) -> bytes | None:
        """One reader's email as Django would serialise it (CRLF line ends), or None to let Django do it.

        With `bodies_fit`, the caller vouches that no body line passes MAX_LINE_BYTES (a bound
        worked out once per template): only the headers' lines are measured.
        """
        values = {"to": to, **header_values}
        if not PLAIN_ADDRESS_RE.fullmatch(to) or len(to) > 254:
            return None
        if not all(PLAIN_HEADER_VALUE_RE.fullmatch(values.get(name, "")) for name in HEADER_SLOTS):
            return None
        if self.boundary in text or self.boundary in html_body or "\r" in text or "\r" in html_body:
            return None
        head = fill_flat(self.head, values)
        raw = "".join(
            (head, text.replace("\n", "\r\n"), self.middle, html_body.replace("\n", "\r\n"), self.tail)
        ).encode("utf-8", "surrogateescape")
        checked = head.encode("utf-8", "surrogateescape") if bodies_fit else raw
        if max(map(len, checked.split(b"\r\n"))) > MAX_LINE_BYTES:
            return None
        return raw


class SerialisedMessage:
    """What PrebuiltEmail.message() returns: the email's bytes as they are sent.

    Email backends read a message with as_bytes()/as_string(), which answer from the bytes;
    anything else (a header lookup, walk()) is answered by the parsed message.
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def as_bytes(self, unixfrom: bool = False, policy=None, linesep: str = "\n") -> bytes:
        linesep = policy.linesep if policy is not None else linesep
        return self.raw if linesep == "\r\n" else self.raw.replace(b"\r\n", linesep.encode("ascii"))

    def as_string(self, unixfrom: bool = False, policy=None, linesep: str = "\n") -> str:
        return self.as_bytes(unixfrom, policy, linesep).decode("utf-8", "surrogateescape")

    def __bytes__(self) -> bytes:
        return self.as_bytes()

    def __str__(self) -> str:
        return self.as_string()

    @cached_property
    def parsed(self) -> email.message.Message:
        return email.message_from_bytes(self.raw)

    def __getattr__(self, name: str):
        return getattr(self.parsed, name)

    def __getitem__(self, name: str):
        return self.parsed[name]

    def __contains__(self, name: str) -> bool:
        return name in self.parsed

    def __iter__(self):
        return iter(self.parsed)

    def __len__(self) -> int:
        return len(self.parsed)


class PrebuiltEmail(EmailMultiAlternatives):
    """A daily email whose bytes were filled in from its forecast's MimeTemplate.

    Subject, body, alternatives and headers are set as on any EmailMultiAlternatives (what
    tests and the locmem backend look at); message() hands back the prebuilt bytes instead of
    building the MIME tree again.
    """

    def __init__(self, *args, raw: bytes, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw = raw

    def message(self, *args, **kwargs) -> SerialisedMessage:  # type: ignore[override]
        return SerialisedMessage(self.raw)
