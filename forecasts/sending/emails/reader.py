"""One reader's daily email, made from its forecast's shared parts by filling in their values."""

import html
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
from forecasts.sending.emails.mime import PrebuiltEmail, daily_headers
from forecasts.sending.emails.placeholders import fill_template, single_blank_lines
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

    def parts(self, forecast: Forecast) -> ForecastParts:
        return self.cache.get(forecast, self.subject_prefix)

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
        shown = set(subscription.topics or []) & parts.topics
        shown |= sky_sections(parts, subscription.time_zone, subscription.delivery_time)
        text = single_blank_lines(fill_template(parts.text_pieces, shown, values)).strip() + "\n"
        html_values = {key: html.escape(value) for key, value in values.items()}
        body_html = fill_template(parts.html_pieces, shown, html_values)

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
