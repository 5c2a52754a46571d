"""The daily email: subject, plain text and inlined HTML, from templates/emails/daily_*.

Most of an email is the same for every reader of one forecast (sign and date). That part is
rendered, and its CSS inlined, once per forecast (`DailyEmailRenderer` keeps it for one send
batch). It carries placeholders such as `[[hz:unsubscribe_url]]` and marked topic sections;
each reader's email is then made by string substitution only: their topics, their links, and
the sky events' times in their own time zone.
"""

import email
import email.message
import html
import logging
import re
import string
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import formatdate
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import cached_property

from accounts.models import Subscription
from accounts.scheduling import zone
from accounts.unsubscribe import UnsubscribeLinks, preferences_url
from forecasts.models import Delivery, Forecast
from forecasts.sky import noon_wheel
from forecasts.zodiac import SIGNS_BY_SLUG

logger = logging.getLogger(__name__)

MAX_FACTS = 8
MAX_FACTS_PER_KIND = 4
TOKEN_RE = re.compile(r"\[\[hz:([a-z_]+(?::[0-9]+)?)\]\]")
SECTION_RE = re.compile(r"<!--hz:section:([a-z_]+)-->(.*?)<!--/hz:section:\1-->\n?", re.S)


def token(name: str) -> str:
    """The placeholder a reader-specific value replaces in the per-forecast templates."""
    return f"[[hz:{name}]]"


_inliner = None


def inline_css(document: str) -> str:
    """Move the <style> rules into style attributes; @media rules (dark mode, small screens) stay in <head>."""
    global _inliner
    if _inliner is None:
        import css_inline

        _inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    return _inliner.inline(document)


# Inlined styles make long lines; an email body line may not pass 998 bytes (RFC 5322) and
# Django would quoted-printable-encode the whole HTML part. Readers' values add ~300 at most.
HTML_LINE_WIDTH = 400
HTML_PIECE_RE = re.compile(r"(<[^>]*>)")
UNWRAPPED_ELEMENTS_RE = re.compile(r"<(style|pre|textarea|script)\b", re.I)


def wrap_html_lines(document: str, width: int = HTML_LINE_WIDTH) -> str:
    """Break long lines at spaces in text between tags, where a newline is just a space.

    Tags, and elements whose whitespace matters (style, pre, textarea), are left whole.
    """
    lines = []
    for line in document.split("\n"):
        if len(line) <= width or UNWRAPPED_ELEMENTS_RE.search(line):
            lines.append(line)
            continue
        out: list[str] = []
        length = 0
        for piece in HTML_PIECE_RE.split(line):
            if piece.startswith("<") or length + len(piece) <= width:
                out.append(piece)
                length += len(piece)
                continue
            words = piece.split(" ")
            for i, word in enumerate(words):
                if i and length + 1 + len(word) > width and length:
                    out.append("\n")
                    length = 0
                elif i:
                    out.append(" ")
                    length += 1
                out.append(word)
                length += len(word)
        lines.append("".join(out))
    return "\n".join(lines)


# How forecasts/writing/transits.py writes an instant in a fact's summary ("14:32 UTC on 9 Mar"). Read
# back only for facts stored before it wrote summary_template and instants (older Forecast rows).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CLOCK_RE = re.compile(r"\b([01]\d|2[0-3]):([0-5]\d) UTC on (\d{1,2}) (" + "|".join(MONTHS) + r")\b")
# A summary_template slot is a plain number: "{0}", never "{}", "{when}" or "{0.year}".
TEMPLATE_SLOT_RE = re.compile(r"[0-9]{1,3}")
# Instants a reader's zone can shift by up to a day and still be a datetime.
EARLIEST_INSTANT = datetime.min.replace(tzinfo=UTC) + timedelta(days=2)
LATEST_INSTANT = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)


@dataclass(frozen=True)
class FactLine:
    """A sky fact as text with its instants kept apart, to be shown in each reader's time zone."""

    segments: tuple[str | datetime, ...]

    @property
    def times(self) -> list[datetime]:
        return [segment for segment in self.segments if isinstance(segment, datetime)]

    def render(self, label) -> str:
        """The sentence with each instant written by `label(instant, in_parentheses)`."""
        out: list[str] = []
        for segment in self.segments:
            if isinstance(segment, str):
                out.append(segment)
            else:
                text = "".join(out)
                out.append(label(segment, text.count("(") > text.count(")")))
        return "".join(out)


def _parse_time(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if EARLIEST_INSTANT <= parsed <= LATEST_INSTANT else None


def _template_segments(template, instants) -> list[str | datetime] | None:
    """A summary_template's text with its {0}, {1}... slots filled by `instants`, or None unless
    every slot is a plain in-range number, every instant fills one, and each is an ISO time."""
    if not isinstance(template, str) or not template.strip() or not isinstance(instants, list):
        return None
    times = [_parse_time(value) for value in instants]
    if None in times:
        return None
    segments: list[str | datetime] = []
    slots: list[int] = []
    try:
        for text, slot, spec, conversion in string.Formatter().parse(template):
            segments.append(text)
            if slot is None:
                continue
            if not TEMPLATE_SLOT_RE.fullmatch(slot) or spec or conversion or int(slot) >= len(times):
                return None
            slots.append(int(slot))
            segments.append(times[int(slot)])
    except ValueError:  # an unmatched brace
        return None
    return segments if sorted(slots) == list(range(len(times))) else None


def _clock_instant(match: re.Match, reference: date) -> datetime | None:
    hour, minute, day, month = int(match[1]), int(match[2]), int(match[3]), MONTHS.index(match[4]) + 1
    candidates = []
    for year in (reference.year - 1, reference.year, reference.year + 1):
        try:
            candidates.append(datetime(year, month, day, hour, minute, tzinfo=UTC))
        except ValueError:
            continue
    noon = datetime.combine(reference, time(12, 0), tzinfo=UTC)
    return min(candidates, key=lambda when: abs(when - noon)) if candidates else None


def _summary_segments(text: str, reference: date) -> list[str | datetime]:
    """The summary with each "14:32 UTC on 9 Mar" it names read back as an instant, the year
    being the one that puts it nearest `reference` (the summary does not say)."""
    segments: list[str | datetime] = []
    last = 0
    for match in CLOCK_RE.finditer(text):
        instant = _clock_instant(match, reference)
        if instant is None:
            continue
        segments += [text[last : match.start()], instant]
        last = match.end()
    segments.append(text[last:])
    return segments


def _fact_text(fact: dict) -> str:
    summary = str(fact.get("summary") or "").strip()
    if summary:
        return summary
    # forecasts/writing/transits.py always writes a summary; compose a plain one if a fact has none.
    bodies = fact.get("bodies") or []
    if isinstance(bodies, str):
        bodies = [bodies]
    words = [str(body).replace("_", " ").title() for body in bodies]
    if fact.get("aspect") and len(words) == 2:
        words = [words[0], str(fact["aspect"]), words[1]]
    if fact.get("sign"):
        words += ["in", str(fact["sign"]).title()]
    text = " ".join(words) or str(fact.get("kind") or "").replace("_", " ").capitalize()
    return text + "." if text else ""


def fact_line(fact: dict, reference: date) -> FactLine | None:
    """One fact as a FactLine: the instants its summary names (from summary_template and
    instants) kept apart from the text; with none, its `time` if it has one."""
    if fact.get("summary_template") is not None or fact.get("instants") is not None:
        segments = _template_segments(fact.get("summary_template"), fact.get("instants"))
        if segments is None:
            # Stored values that do not fit together: show the summary as written (its times in
            # UTC) rather than fail a page or a send over one fact.
            text = _fact_text(fact)
            return FactLine((text,)) if text else None
    else:
        # Facts stored before transits.py wrote summary_template and instants: read the times
        # back out of the summary's words.
        text = _fact_text(fact)
        if not text:
            return None
        segments = _summary_segments(text, reference)
    instant = _parse_time(fact.get("time"))
    if instant is not None and not any(isinstance(segment, datetime) for segment in segments):
        segments = ["".join(segments).rstrip(". "), " at ", instant, "."]
    return FactLine(tuple(segment for segment in segments if segment != ""))


def fact_lines(facts, reference: date) -> list[FactLine]:
    """The forecast's sky facts to show, highest rank first (the order forecasts/writing/transits.py uses)."""
    if not isinstance(facts, list):
        return []

    def rank(fact: dict) -> float:
        value = fact.get("rank")
        return -float(value) if isinstance(value, int | float) else 0.0

    lines, per_kind = [], Counter()
    for fact in sorted((f for f in facts if isinstance(f, dict)), key=rank):
        # Aspects outnumber everything else: keep room for ingresses, the Moon's sign, retrogrades.
        kind = str(fact.get("kind") or "")
        line = fact_line(fact, reference) if per_kind[kind] < MAX_FACTS_PER_KIND else None
        if line is not None:
            per_kind[kind] += 1
            lines.append(line)
        if len(lines) == MAX_FACTS:
            break
    return lines


def local_time_label(instant: datetime, time_zone: str, local_date: date, in_parentheses: bool = False) -> str:
    """'14:32 (Europe/Paris)', with the day when it is not on `local_date`; inside parentheses
    already, '14:32 Europe/Paris time'."""
    local = instant.astimezone(zone(time_zone))
    clock = f"{local:%H:%M}" if local.date() == local_date else f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"
    return f"{clock} {time_zone} time" if in_parentheses else f"{clock} ({time_zone})"


def web_version_url(forecast: Forecast) -> str:
    """The forecast's page on the site; each reader's link adds ?tz= for their event times."""
    return settings.SITE_URL + reverse(
        "forecasts:sign_day", kwargs={"sign": forecast.sign, "day": forecast.date.isoformat()}
    )


SUBJECT_TEMPLATE = "emails/daily_subject.txt"
TEXT_TEMPLATE = "emails/daily.txt"
HTML_TEMPLATE = "emails/daily.html"
DAILY_TEMPLATES = (SUBJECT_TEMPLATE, TEXT_TEMPLATE, HTML_TEMPLATE)


@dataclass
class ForecastParts:
    """What every reader of one forecast shares: rendered once, with placeholders."""

    forecast: Forecast
    subject: str
    text: str
    html: str
    times: list[tuple[datetime, bool]]  # what the [[hz:time:N]] placeholders stand for
    web_url: str
    topics: set[str] = field(default_factory=set)
    text_pieces: tuple = ()
    html_pieces: tuple = ()
    mime: "MimeTemplate | None" = None
    labels_by_zone: dict[str, dict[str, str]] = field(default_factory=dict)  # filled as readers come


def render_forecast_parts(forecast: Forecast, subject_prefix: str = "") -> ForecastParts:
    """Render subject, text and HTML for one forecast, inlining the HTML's CSS (once)."""
    sign = SIGNS_BY_SLUG[forecast.sign]
    facts = fact_lines(forecast.facts, forecast.date)
    times: list[tuple[datetime, bool]] = []

    def placeholder(instant: datetime, in_parentheses: bool) -> str:
        times.append((instant, in_parentheses))
        return token(f"time:{len(times) - 1}")

    wheel_svg, wheel_alt = noon_wheel(forecast.date)
    sections = forecast.sections_in_order()
    context = {
        "forecast": forecast,
        "sign": sign,
        "day": forecast.date,
        "sections": sections,
        "facts": [fact.render(placeholder) for fact in facts],
        "wheel_svg": wheel_svg,
        "wheel_alt": wheel_alt,
        "preferences_url": preferences_url(),
        "site_url": settings.SITE_URL,
        "t": {name: token(name) for name in ("unsubscribe_url", "web_url", "email", "time_zone", "delivery_time")},
    }
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    context["subject"] = subject_prefix + subject
    text = render_to_string(TEXT_TEMPLATE, context)
    document = wrap_html_lines(inline_css(render_to_string(HTML_TEMPLATE, context)))
    return ForecastParts(
        forecast=forecast,
        subject=subject_prefix + subject,
        text=text,
        html=document,
        times=times,
        web_url=web_version_url(forecast) if forecast.pk else settings.SITE_URL + "/",
        topics={section["topic"] for section in sections},
        text_pieces=compile_template(text),
        html_pieces=compile_template(document),
        mime=MimeTemplate.build(subject_prefix + subject),
    )


@dataclass(frozen=True)
class _Token:
    name: str


@dataclass(frozen=True)
class _Section:
    topic: str
    pieces: tuple


def _compile_tokens(text: str) -> list:
    pieces: list = []
    last = 0
    for match in TOKEN_RE.finditer(text):
        pieces += [text[last : match.start()], _Token(match.group(1))]
        last = match.end()
    pieces.append(text[last:])
    return [piece for piece in pieces if piece != ""]


def compile_template(template: str) -> tuple:
    """Split a per-forecast template once into text, placeholders and topic sections.

    Filling the pieces for a reader is then a join, not two regular-expression passes over
    the whole email: the send fills one per reader, thousands a minute.
    """
    pieces: list = []
    last = 0
    for match in SECTION_RE.finditer(template):
        pieces += _compile_tokens(template[last : match.start()])
        pieces.append(_Section(match.group(1), tuple(_compile_tokens(match.group(2)))))
        last = match.end()
    pieces += _compile_tokens(template[last:])
    return tuple(pieces)


def single_blank_lines(text: str) -> str:
    """Runs of blank lines (left where a reader's topic sections were) down to one; what
    re.sub(r"\n{3,}", "\n\n", text) does, several times faster per email."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def fill_template(pieces: tuple, topics: set[str], values: dict[str, str]) -> str:
    """A compiled template with the reader's values, and only the sections of their topics."""
    out: list[str] = []

    def fill(pieces: tuple) -> None:
        for piece in pieces:
            if type(piece) is str:
                out.append(piece)
            elif type(piece) is _Token:
                out.append(values.get(piece.name, ""))
            elif piece.topic in topics:
                fill(piece.pieces)

    fill(pieces)
    return "".join(out)


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

    head: tuple  # compiled pieces, up to the text part's body
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
        return cls(head=compile_template(head), middle=middle, tail=tail, boundary=mime.get_boundary())

    def fill(self, to: str, header_values: dict[str, str], text: str, html_body: str) -> bytes | None:
        """One reader's email as Django would serialise it (CRLF line ends), or None to let Django do it."""
        values = {"to": to, **header_values}
        if not PLAIN_ADDRESS_RE.fullmatch(to) or len(to) > 254:
            return None
        if not all(PLAIN_HEADER_VALUE_RE.fullmatch(values.get(name, "")) for name in HEADER_SLOTS):
            return None
        if self.boundary in text or self.boundary in html_body or "\r" in text or "\r" in html_body:
            return None
        raw = "".join(
            (
                fill_template(self.head, set(), values),
                text.replace("\n", "\r\n"),
                self.middle,
                html_body.replace("\n", "\r\n"),
                self.tail,
            )
        ).encode("utf-8", "surrogateescape")
        if max(map(len, raw.split(b"\r\n"))) > MAX_LINE_BYTES:
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


# What ForecastPartsCache needs of a forecast to find it rendered: the send loads only these
# per batch, not the texts and facts (a tenth of the rows' load time).
FORECAST_KEY_FIELDS = ("id", "date", "sign", "status", "updated_at")


class ForecastPartsCache:
    """Rendered forecasts, the least recently used dropped beyond `size` (None: no limit).

    Keyed by what rendering reads besides the templates: the forecast as last saved
    (updated_at, so an edit renders again), the subject prefix and the settings written into
    every email. Unsaved forecasts (previews) are rendered each time. A forecast loaded with
    only its key's fields (FORECAST_KEY_FIELDS) is loaded whole when it has to be rendered.
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self._parts: OrderedDict[tuple, ForecastParts] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(forecast: Forecast, subject_prefix: str) -> tuple:
        return (
            forecast.pk,
            forecast.updated_at,
            subject_prefix,
            settings.SITE_URL,
            settings.DEFAULT_FROM_EMAIL,
            repr(settings.AWS_SES_CONFIGURATION_SET),
        )

    def get(self, forecast: Forecast, subject_prefix: str) -> ForecastParts:
        if forecast.pk is None:
            return render_forecast_parts(forecast, subject_prefix)
        key = self._key(forecast, subject_prefix)
        with self._lock:
            parts = self._parts.get(key)
            if parts is not None:
                self._parts.move_to_end(key)
                return parts
        if forecast.get_deferred_fields():  # loaded for its key only (the send): the whole row to render
            forecast = Forecast.objects.get(pk=forecast.pk)
            key = self._key(forecast, subject_prefix)
        parts = render_forecast_parts(forecast, subject_prefix)
        with self._lock:
            self._parts[key] = parts
            while self.size is not None and len(self._parts) > self.size:
                self._parts.popitem(last=False)
        return parts


# One per process, for the daily send: a day's readers of one forecast are spread over many
# send batches, and rendering one (templates, CSS inlining, the wheel) costs as much as
# sending a few hundred emails. 12 signs x a few local dates in flight fit easily.
send_parts_cache = ForecastPartsCache(size=64)


class DailyEmailRenderer:
    """Builds daily emails; each forecast's shared parts are rendered once for `cache`'s lifetime
    (by default this renderer's own)."""

    def __init__(self, subject_prefix: str = "", cache: ForecastPartsCache | None = None) -> None:
        self.subject_prefix = subject_prefix
        self.cache = cache if cache is not None else ForecastPartsCache()
        self._domain = urlsplit(settings.SITE_URL).hostname or "localhost"
        self._preferences_url = preferences_url()
        self._unsubscribe_links = UnsubscribeLinks()

    def parts(self, forecast: Forecast) -> ForecastParts:
        return self.cache.get(forecast, self.subject_prefix)

    def time_labels(self, parts: ForecastParts, time_zone: str) -> dict[str, str]:
        """The [[hz:time:N]] values for readers in `time_zone` (many readers share one zone)."""
        labels = parts.labels_by_zone.get(time_zone)
        if labels is None:
            labels = parts.labels_by_zone[time_zone] = {
                f"time:{i}": local_time_label(instant, time_zone, parts.forecast.date, in_parentheses)
                for i, (instant, in_parentheses) in enumerate(parts.times)
            }
        return labels

    def message(
        self, subscription: Subscription, forecast: Forecast, delivery: Delivery | None = None
    ) -> EmailMultiAlternatives:
        """One reader's email for `forecast`, ready for any Django email backend."""
        parts = self.parts(forecast)
        email_address = subscription.user.email
        # A reader with no subscription row (an admin's preview) gets the preferences page instead.
        unsubscribe = self._unsubscribe_links.url(subscription) if subscription.pk is not None else None
        web_url = f"{parts.web_url}?tz={quote(subscription.time_zone, safe='/')}"
        values = {
            "email": email_address,
            "time_zone": subscription.time_zone,
            "delivery_time": subscription.delivery_time.strftime("%H:%M"),
            "web_url": web_url,
            "unsubscribe_url": unsubscribe or self._preferences_url,
            **self.time_labels(parts, subscription.time_zone),
        }
        topics = set(subscription.topics or []) & parts.topics
        text = single_blank_lines(fill_template(parts.text_pieces, topics, values)).strip() + "\n"
        html_values = {key: html.escape(value) for key, value in values.items()}
        body_html = fill_template(parts.html_pieces, topics, html_values)

        message_id = make_msgid(domain=self._domain)
        date_header = formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
        delivery_id = str(delivery.pk) if delivery is not None and delivery.pk else None
        headers = daily_headers(message_id, date_header, unsubscribe, delivery_id)
        kwargs = {
            "subject": parts.subject,
            "body": text,
            "from_email": settings.DEFAULT_FROM_EMAIL,
            "to": [email_address],
            "headers": headers,
        }
        raw = None
        if parts.mime is not None and unsubscribe and delivery_id:
            header_values = {
                "date": date_header,
                "message_id": message_id,
                "unsubscribe_url": unsubscribe,
                "delivery": delivery_id,
            }
            raw = parts.mime.fill(email_address, header_values, text, body_html)
        message = PrebuiltEmail(**kwargs, raw=raw) if raw is not None else EmailMultiAlternatives(**kwargs)
        message.attach_alternative(body_html, "text/html")
        return message
