"""A forecast's shared parts: subject, plain text and inlined HTML from templates/emails/daily_*.

Rendered once per forecast (with placeholders for each reader's values), as most of an email is
the same for every reader of one forecast.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.unsubscribe import preferences_url
from forecasts.models import Forecast
from forecasts.sending.emails.facts import fact_lines
from forecasts.sending.emails.mime import MimeTemplate
from forecasts.sending.emails.placeholders import compile_template, token
from forecasts.sky import noon_wheel
from forecasts.zodiac import SIGNS_BY_SLUG

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
    facts = fact_lines(forecast.facts)
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
