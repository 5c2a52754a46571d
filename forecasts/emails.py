"""The daily email: subject, plain text and inlined HTML, from templates/emails/daily_*.

Most of an email is the same for every reader of one forecast (sign and date). That part is
rendered, and its CSS inlined, once per forecast (`DailyEmailRenderer` keeps it for one send
batch). It carries placeholders such as `[[hz:unsubscribe_url]]` and marked topic sections;
each reader's email is then made by string substitution only: their topics, their links, and
the sky events' times in their own time zone.
"""

import html
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Subscription
from accounts.scheduling import zone
from accounts.unsubscribe import preferences_url
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


# How forecasts/transits.py writes an instant in a fact's summary ("14:32 UTC on 9 Mar").
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CLOCK_RE = re.compile(r"\b([01]\d|2[0-3]):([0-5]\d) UTC on (\d{1,2}) (" + "|".join(MONTHS) + r")\b")


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
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


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


def _fact_text(fact: dict) -> str:
    summary = str(fact.get("summary") or "").strip()
    if summary:
        return summary
    # forecasts/transits.py always writes a summary; compose a plain one if a fact has none.
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
    """One fact as a FactLine: the UTC times its summary names become instants; else its `time`."""
    text = _fact_text(fact)
    if not text:
        return None
    segments: list[str | datetime] = []
    last = 0
    for match in CLOCK_RE.finditer(text):
        instant = _clock_instant(match, reference)
        if instant is None:
            continue
        segments += [text[last : match.start()], instant]
        last = match.end()
    segments.append(text[last:])
    instant = _parse_time(fact.get("time"))
    if len(segments) == 1 and instant is not None:
        segments = [text.rstrip(". "), " at ", instant, "."]
    return FactLine(tuple(segment for segment in segments if segment != ""))


def fact_lines(facts, reference: date) -> list[FactLine]:
    """The forecast's sky facts to show, highest rank first (the order forecasts/transits.py uses)."""
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


def unsubscribe_link(subscription: Subscription) -> str | None:
    """The one-click unsubscribe URL (accounts/unsubscribe.py), or None for a reader with no subscription row."""
    if subscription.pk is None:
        return None
    from accounts.unsubscribe import unsubscribe_url

    return unsubscribe_url(subscription)


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
    subject = " ".join(render_to_string("emails/daily_subject.txt", context).split())
    context["subject"] = subject_prefix + subject
    text = render_to_string("emails/daily.txt", context)
    document = inline_css(render_to_string("emails/daily.html", context))
    return ForecastParts(
        forecast=forecast,
        subject=subject_prefix + subject,
        text=text,
        html=document,
        times=times,
        web_url=web_version_url(forecast) if forecast.pk else settings.SITE_URL + "/",
        topics={section["topic"] for section in sections},
    )


def _personalise(template: str, topics: set[str], values: dict[str, str]) -> str:
    def keep_section(match: re.Match) -> str:
        return match.group(2) if match.group(1) in topics else ""

    body = SECTION_RE.sub(keep_section, template)
    return TOKEN_RE.sub(lambda match: values.get(match.group(1), ""), body)


class DailyEmailRenderer:
    """Builds daily emails; keeps each forecast's shared parts for its own lifetime (one send batch)."""

    def __init__(self, subject_prefix: str = "") -> None:
        self.subject_prefix = subject_prefix
        self._parts: dict[object, ForecastParts] = {}

    def parts(self, forecast: Forecast) -> ForecastParts:
        key = forecast.pk or id(forecast)
        if key not in self._parts:
            self._parts[key] = render_forecast_parts(forecast, self.subject_prefix)
        return self._parts[key]

    def message(
        self, subscription: Subscription, forecast: Forecast, delivery: Delivery | None = None
    ) -> EmailMultiAlternatives:
        """One reader's email for `forecast`, ready for any Django email backend."""
        parts = self.parts(forecast)
        email = subscription.user.email
        unsubscribe = unsubscribe_link(subscription)
        web_url = f"{parts.web_url}?tz={quote(subscription.time_zone, safe='/')}"
        values = {
            "email": email,
            "time_zone": subscription.time_zone,
            "delivery_time": subscription.delivery_time.strftime("%H:%M"),
            "web_url": web_url,
            "unsubscribe_url": unsubscribe or preferences_url(),
        }
        for i, (instant, in_parentheses) in enumerate(parts.times):
            values[f"time:{i}"] = local_time_label(instant, subscription.time_zone, forecast.date, in_parentheses)
        topics = set(subscription.topics or []) & parts.topics
        text = re.sub(r"\n{3,}", "\n\n", _personalise(parts.text, topics, values)).strip() + "\n"
        html_values = {key: html.escape(value) for key, value in values.items()}
        body_html = _personalise(parts.html, topics, html_values)

        headers = {"Message-ID": make_msgid(domain=urlsplit(settings.SITE_URL).hostname or "localhost")}
        if unsubscribe:
            # RFC 8058 one-click: mailbox providers POST to the URL, with no cookies.
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if settings.AWS_SES_CONFIGURATION_SET and not callable(settings.AWS_SES_CONFIGURATION_SET):
            headers["X-SES-CONFIGURATION-SET"] = settings.AWS_SES_CONFIGURATION_SET
        if delivery is not None and delivery.pk:
            # SES events carry the headers: lets an event find its delivery even without a message id.
            headers["X-Horoscope-Delivery"] = str(delivery.pk)
        message = EmailMultiAlternatives(
            subject=parts.subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[email], headers=headers
        )
        message.attach_alternative(body_html, "text/html")
        return message
