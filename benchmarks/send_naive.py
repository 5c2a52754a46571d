"""The send's naive baselines: what a Django developer writes without the product's send path.

- `send_honest`: the loop Django's documentation leads to for bulk mail. One connection,
  opened once (`with get_connection() as connection`); for each reader the subject, text and
  HTML templates rendered with `render_to_string` and that reader's values (their topics,
  their "in the sky" lines and times in their own zone, their links), the HTML's CSS inlined
  as the product's templates need (they keep their styles in <style>, which mail clients
  drop), an `EmailMultiAlternatives` with the List-Unsubscribe headers; then
  `connection.send_messages(...)` every BATCH messages. The forecasts are read once, in one
  query. It uses the product's own templates and helpers (the time labels, the fact lines),
  so the email says what the product's says; only the product's once-per-forecast rendering
  and prebuilt MIME bytes are missing.
- `send_mail_per_reader`: the email made by a fresh DailyEmailRenderer per reader (every
  template rendered and the CSS inlined again), then `send_mail(...)`, which opens a new SES
  connection (a new boto3 client) for every email. What this benchmark called "naive" before.
"""

import re
import time
from urllib.parse import quote

from benchmarks.support import rounded

BATCH = 100
# The product's templates mark each reader-dependent section for its once-per-forecast
# rendering; rendered for one reader those marks are just comments, taken out here.
SECTION_MARK_RE = re.compile(r"<!--/?hz:section:[a-z0-9_]+-->\n?")


def honest_email(subscription, forecast, connection):
    """One reader's daily email, rendered from the templates for that reader alone."""
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives
    from django.template.loader import render_to_string
    from django.urls import reverse

    from accounts.scheduling import zone
    from accounts.unsubscribe import preferences_url, unsubscribe_url
    from forecasts.sending.emails.facts import fact_lines, local_time_label, reader_window
    from forecasts.sending.emails.render import (
        HTML_TEMPLATE,
        SUBJECT_TEMPLATE,
        TEXT_TEMPLATE,
        _preheader,
        inline_css,
        web_version_url,
        wheel_png_url,
    )
    from forecasts.sky import noon_wheel
    from forecasts.writing.slots import render_slot, replace_slots
    from forecasts.zodiac import SIGNS_BY_SLUG

    day, time_zone = forecast.date, subscription.time_zone
    local = zone(time_zone)

    def in_my_zone(text) -> str:
        return replace_slots(str(text or ""), lambda slot: render_slot(slot.word, slot.instant, local, day))

    start, end = reader_window(day, time_zone, subscription.delivery_time)
    facts = [
        {"key": f"sky_{i}", "text": line.render(lambda at, nested: local_time_label(at, time_zone, day, nested))}
        for i, line in enumerate(fact_lines(forecast.facts, start, end))
    ]
    wheel_svg, wheel_alt = noon_wheel(day)
    advice = forecast.advice if isinstance(forecast.advice, dict) else {}
    unsubscribe = unsubscribe_url(subscription)
    story = in_my_zone(forecast.overview)
    context = {
        "forecast": forecast,
        "sign": SIGNS_BY_SLUG[forecast.sign],
        "day": day,
        "story": story,
        "preheader": _preheader(forecast),
        "sections": [
            {**section, "text": in_my_zone(section["text"])}
            for section in forecast.sections_in_order(subscription.topics or [])
        ],
        "advice": {key: in_my_zone(advice.get(key)) for key in ("do", "dont")},
        "facts": facts,
        "glossary_url": settings.SITE_URL + reverse("forecasts:glossary"),
        "wheel_url": wheel_png_url(day) if wheel_svg else "",
        "wheel_title": f"Zodiac wheel of the sky at noon UTC on {day.day} {day:%B %Y}",
        "wheel_alt": wheel_alt,
        "preferences_url": preferences_url(),
        "site_url": settings.SITE_URL,
        "t": {
            "unsubscribe_url": unsubscribe,
            "web_url": f"{web_version_url(forecast)}?tz={quote(time_zone, safe='/')}",
            "email": subscription.user.email,
            "time_zone": time_zone,
            "delivery_time": subscription.delivery_time.strftime("%H:%M"),
        },
    }
    context["subject"] = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    text = SECTION_MARK_RE.sub("", render_to_string(TEXT_TEMPLATE, context))
    html = inline_css(SECTION_MARK_RE.sub("", render_to_string(HTML_TEMPLATE, context)))
    message = EmailMultiAlternatives(
        context["subject"],
        text,
        settings.DEFAULT_FROM_EMAIL,
        [subscription.user.email],
        connection=connection,
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    message.attach_alternative(html, "text/html")
    return message


def _forecasts_for(subscriptions, now) -> tuple[dict, dict]:
    from accounts.scheduling import local_date_of
    from forecasts.models import Forecast

    days = {s.pk: local_date_of(now, s.time_zone) for s in subscriptions}
    found = Forecast.objects.ready().filter(date__in=set(days.values()), sign__in={s.sign for s in subscriptions})
    return days, {(f.date, f.sign): f for f in found}


def send_honest(subscriptions, time_limit: float) -> dict:
    """The documented bulk loop over `subscriptions`, whole batches until `time_limit` seconds."""
    from django.core.mail import get_connection
    from django.utils import timezone

    began = time.perf_counter()
    sent = 0
    days, forecasts = _forecasts_for(subscriptions, timezone.now())
    with get_connection() as connection:
        for start in range(0, len(subscriptions), BATCH):
            if time.perf_counter() - began > time_limit:
                break
            batch = [
                honest_email(s, forecasts[(days[s.pk], s.sign)], connection)
                for s in subscriptions[start : start + BATCH]
            ]
            sent += connection.send_messages(batch)
    elapsed = time.perf_counter() - began
    return {"sent": sent, "seconds": elapsed, "per_s": sent / elapsed}


def send_mail_per_reader(subscriptions, time_limit: float) -> dict:
    """A fresh DailyEmailRenderer per reader, then `send_mail` (a new SES connection per email)."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.utils import timezone

    from accounts.scheduling import local_date_of
    from forecasts.models import Forecast
    from forecasts.sending.emails.reader import DailyEmailRenderer

    began = time.perf_counter()
    sent = 0
    for subscription in subscriptions:
        if time.perf_counter() - began > time_limit:
            break
        day = local_date_of(timezone.now(), subscription.time_zone)
        forecast = Forecast.objects.get(date=day, sign=subscription.sign)
        message = DailyEmailRenderer().message(subscription, forecast)
        send_mail(
            message.subject,
            message.body,
            settings.DEFAULT_FROM_EMAIL,
            [subscription.user.email],
            html_message=message.alternatives[0][0],
        )
        sent += 1
    elapsed = time.perf_counter() - began
    return {"sent": sent, "seconds": elapsed, "per_s": sent / elapsed}


def checked(result: dict, sink) -> dict:
    """The run's figures with what the sink says it received; raises if the two disagree."""
    stats = sink.stats()
    if not stats["accepted"] == stats["distinct_recipients"] == result["sent"] or stats["errors"]:
        raise RuntimeError(f"naive send: sent {result['sent']}, the sink says {stats}")
    mean_bytes = rounded(stats["bytes"] / max(stats["accepted"], 1))
    return {**result, "sink_accepted": stats["accepted"], "sink_bytes": stats["bytes"], "mean_bytes": mean_bytes}
