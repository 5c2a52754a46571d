"""A forecast's shared parts: subject, plain text and inlined HTML from templates/emails/daily_*.

Rendered once per forecast (with placeholders for each reader's values), as most of an email is
the same for every reader of one forecast.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, time

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.unsubscribe import preferences_url
from forecasts.models import Forecast
from forecasts.sending.emails.facts import ranked_fact_lines, reader_window, visible_lines
from forecasts.sending.emails.mime import MimeTemplate
from forecasts.sending.emails.placeholders import compile_template, token
from forecasts.sky import noon_wheel
from forecasts.writing.sky_claims import sentences
from forecasts.writing.slots import Slot, replace_slots, slots_in
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


def wheel_png_url(day) -> str:
    """The absolute address of the date's sky wheel as a PNG (the same for every reader)."""
    return settings.SITE_URL + reverse("forecasts:sky_wheel_png", kwargs={"day": day.isoformat()})


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
    # What the [[hz:time:N]] placeholders stand for: (instant, inside parentheses, slot word);
    # a fact line's time has no slot word, a time slot of the text has its own ("at", "until").
    times: list[tuple[datetime, bool, str]]
    web_url: str
    topics: set[str] = field(default_factory=set)
    text_pieces: tuple = ()
    html_pieces: tuple = ()
    mime: "MimeTemplate | None" = None
    labels_by_zone: dict[str, dict[str, str]] = field(default_factory=dict)  # filled as readers come
    # A zone's values (its labels, web link), as text and as escaped HTML, and the longest, by time zone.
    zone_values: dict[str, tuple[dict[str, str], dict[str, str], int]] = field(default_factory=dict)
    # The text and HTML flattened for one set of shown sections (topics and sky lines).
    flat_by_sections: dict[frozenset[str], tuple] = field(default_factory=dict)
    sky_facts: list[dict] = field(default_factory=list)  # the facts of the sky_N sections, in order
    # Which sky_N sections a reader sees, by (zone, delivery time): many readers share both.
    sky_by_reader: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)


def _preheader(forecast: Forecast) -> str:
    """The inbox preview: the story's first sentences that name no time (times differ by reader)."""
    plain = [s.strip() for s in sentences(forecast.overview) if not slots_in(s)]
    return " ".join(plain) or forecast.headline


def render_forecast_parts(forecast: Forecast, subject_prefix: str = "") -> ForecastParts:
    """Render subject, text and HTML for one forecast, inlining the HTML's CSS (once)."""
    sign = SIGNS_BY_SLUG[forecast.sign]
    # Every fact any reader may see; each reader's email keeps those of their own day.
    ranked = ranked_fact_lines(forecast.facts)
    times: list[tuple[datetime, bool, str]] = []

    def placeholder(instant: datetime, in_parentheses: bool) -> str:
        times.append((instant, in_parentheses, ""))
        return token(f"time:{len(times) - 1}")

    def slot_placeholder(found: Slot) -> str:
        times.append((found.instant, False, found.word))
        return token(f"time:{len(times) - 1}")

    def local_text(text) -> str:
        return replace_slots(str(text or ""), slot_placeholder)

    wheel_svg, wheel_alt = noon_wheel(forecast.date)  # the SVG only says whether there is a wheel
    sections = [{**section, "text": local_text(section["text"])} for section in forecast.sections_in_order()]
    advice = forecast.advice if isinstance(forecast.advice, dict) else {}
    context = {
        "forecast": forecast,
        "sign": sign,
        "day": forecast.date,
        "story": local_text(forecast.overview),
        "preheader": _preheader(forecast),
        "sections": sections,
        "advice": {key: local_text(advice.get(key)) for key in ("do", "dont")},
        "facts": [{"key": f"sky_{i}", "text": line.render(placeholder)} for i, (_, line) in enumerate(ranked)],
        "glossary_url": settings.SITE_URL + reverse("forecasts:glossary"),
        "wheel_url": wheel_png_url(forecast.date) if wheel_svg else "",
        # The image's alt is short; the positions follow it as text, also when images are blocked.
        "wheel_title": f"Zodiac wheel of the sky at noon UTC on {forecast.date.day} {forecast.date:%B %Y}",
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
        sky_facts=[fact for fact, _ in ranked],
    )


def sky_sections(parts: ForecastParts, time_zone: str, delivery_time: time) -> frozenset[str]:
    """The "In the sky" sections a reader sees: the facts from their delivery time to the end of
    their local day (and the heading, when there is any)."""
    key = (time_zone, delivery_time.strftime("%H:%M"))
    shown = parts.sky_by_reader.get(key)
    if shown is None:
        start, end = reader_window(parts.forecast.date, time_zone, delivery_time)
        ranked = [(fact, None) for fact in parts.sky_facts]
        names = {f"sky_{index}" for index in visible_lines(ranked, start, end)}
        shown = parts.sky_by_reader[key] = frozenset(names | {"sky"} if names else names)
    return shown
