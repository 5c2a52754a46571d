"""One reader's daily email, made from its forecast's shared parts by filling in their values."""

import html
import time
from email.utils import formatdate
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid

from accounts.models import Subscription
from accounts.scheduling import zone
from accounts.unsubscribe import UnsubscribeLinks, preferences_url
from forecasts.models import Delivery, Forecast
from forecasts.sending.emails.cache import ForecastPartsCache
from forecasts.sending.emails.facts import local_time_label
from forecasts.sending.emails.mime import MAX_LINE_BYTES, PrebuiltEmail, daily_headers
from forecasts.sending.emails.placeholders import Flat, fill_flat, flatten, single_blank_lines
from forecasts.sending.emails.render import ForecastParts, sky_sections
from forecasts.writing.slots import render_slot


class DailyEmailRenderer:
    """Builds daily emails; each forecast's shared parts are rendered once for `cache`'s lifetime
    (by default this renderer's own)."""

    def __init__(self, subject_prefix: str = "", cache: ForecastPartsCache | None = None) -> None:
        self.subject_prefix = subject_prefix
        self.cache = cache if cache is not None else ForecastPartsCache()
        self._domain = urlsplit(settings.SITE_URL).hostname or "localhost"
        self._preferences_url = preferences_url()
        self._unsubscribe_links = UnsubscribeLinks()
        # The last forecasts' parts by the instance and its updated_at: a batch's readers share a
        # few forecast instances, and the cache's key reads the settings on each lookup.
        self._parts: dict[int, tuple[Forecast, object, ForecastParts]] = {}
        self._date: tuple[int, bool, str] = (-1, False, "")

    def parts(self, forecast: Forecast) -> ForecastParts:
        # A deferred field is one missing from __dict__ (what get_deferred_fields() checks, for every field).
        if forecast.pk is None or "updated_at" not in forecast.__dict__:
            return self.cache.get(forecast, self.subject_prefix)
        seen = self._parts.get(id(forecast))
        if seen is not None and seen[0] is forecast and seen[1] == forecast.updated_at:
            return seen[2]
        parts = self.cache.get(forecast, self.subject_prefix)
        if len(self._parts) > 64:
            self._parts.clear()
        self._parts[id(forecast)] = (forecast, forecast.updated_at, parts)
        return parts

    def _date_header(self) -> str:
        """The Date header, as formatdate() writes it now: it changes once a second."""
        second, localtime = int(time.time()), settings.EMAIL_USE_LOCALTIME
        if self._date[:2] != (second, localtime):
            self._date = (second, localtime, formatdate(second, localtime=localtime))
        return self._date[2]

    def time_labels(self, parts: ForecastParts, time_zone: str) -> dict[str, str]:
        """The [[hz:time:N]] values for readers in `time_zone` (many readers share one zone)."""
        labels = parts.labels_by_zone.get(time_zone)
        if labels is None:
            local, day = zone(time_zone), parts.forecast.date
            labels = parts.labels_by_zone[time_zone] = {
                f"time:{i}": render_slot(word, instant, local, day)
                if word
                else local_time_label(instant, time_zone, day, in_parentheses)
                for i, (instant, in_parentheses, word) in enumerate(parts.times)
            }
        return labels

    def _zone_values(self, parts: ForecastParts, time_zone: str) -> tuple[dict[str, str], dict[str, str], int]:
        """The values shared by readers in `time_zone` (time labels, web link), as text and escaped
        for the HTML, and the longest in bytes (escaped); worked out once per zone."""
        found = parts.zone_values.get(time_zone)
        if found is None:
            labels = self.time_labels(parts, time_zone)
            quoted = quote(time_zone, safe="/")
            text = {**labels, "time_zone": time_zone, "web_url": f"{parts.web_url}?tz={quoted}"}
            escaped = {key: html.escape(value) for key, value in text.items()}
            found = parts.zone_values[time_zone] = (text, escaped, _longest_value(escaped))
        return found

    def _templates(self, parts: ForecastParts, shown: frozenset[str]) -> tuple[Flat, Flat]:
        """The text and HTML with a reader's sections chosen, flattened once per set of sections."""
        both = parts.flat_by_sections.get(shown)
        if both is None:
            both = (flatten(parts.text_pieces, shown), flatten(parts.html_pieces, shown))
            parts.flat_by_sections[shown] = both
        return both

    def message(
        self, subscription: Subscription, forecast: Forecast, delivery: Delivery | None = None
    ) -> EmailMultiAlternatives:
        """One reader's email for `forecast`, ready for any Django email backend."""
        parts = self.parts(forecast)
        email_address = subscription.user.email
        # A reader with no subscription row (an admin's preview) gets the preferences page instead.
        unsubscribe = self._unsubscribe_links.url(subscription) if subscription.pk is not None else None
        reader = {
            "email": email_address,
            "delivery_time": subscription.delivery_time.strftime("%H:%M"),
            "unsubscribe_url": unsubscribe or self._preferences_url,
        }
        zone_text, zone_html, zone_longest = self._zone_values(parts, subscription.time_zone)
        reader_html = {key: html.escape(value) for key, value in reader.items()}
        values = {**zone_text, **reader}
        html_values = {**zone_html, **reader_html}
        shown = frozenset(
            (parts.topics.intersection(subscription.topics or ()))
            | sky_sections(parts, subscription.time_zone, subscription.delivery_time)
        )
        text_template, html_template = self._templates(parts, shown)
        text = single_blank_lines(fill_flat(text_template, values)).strip() + "\n"
        body_html = fill_flat(html_template, html_values)

        message_id = make_msgid(domain=self._domain)
        date_header = self._date_header()
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
            # Bodies whose lines provably fit RFC 5322's limit are not split to check each line
            # (escaping never shortens a value: the HTML's bound covers both).
            longest = max(_longest_value(reader_html), zone_longest)
            fits = max(text_template.line_bound(longest), html_template.line_bound(longest))
            raw = parts.mime.fill(email_address, header_values, text, body_html, bodies_fit=fits <= MAX_LINE_BYTES)
        message = PrebuiltEmail(**kwargs, raw=raw) if raw is not None else EmailMultiAlternatives(**kwargs)
        message.attach_alternative(body_html, "text/html")
        return message


def _longest_value(values: dict[str, str]) -> int:
    """The most UTF-8 bytes any value takes (a bound: 4 a character unless all are ASCII); a
    value with a line break counts as too long, as it would start a line of its own."""
    joined = "".join(values.values())
    if "\n" in joined or "\r" in joined:
        return MAX_LINE_BYTES + 1
    longest = max(map(len, values.values()), default=0)
    return longest if joined.isascii() else 4 * longest
