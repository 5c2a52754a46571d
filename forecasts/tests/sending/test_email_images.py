"""The daily email holds what mail clients keep: no SVG or script, every image a PNG with alt text.

The emails are real ones: twelve readings written by the offline composer, dispatched and sent
through the send path to Django's in-memory backend, for readers in zones where the date differs.
"""

import io
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.core import mail
from PIL import Image

from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.emails.cache import send_parts_cache
from forecasts.sending.send import deliveries_send
from forecasts.sky.wheel_png import PNG_SIZE, noon_wheel_png
from forecasts.tests.factories import add_readers
from forecasts.writing.generation import forecasts_prepare
from forecasts.zodiac import SIGN_SLUGS

pytestmark = pytest.mark.django_db

OFFLINE = "forecasts.writing.generators.offline.OfflineComposer"
DAY = date(2026, 12, 5)


class EmailHtml(HTMLParser):
    """The tags of an email's HTML that mail clients strip or need: svg, script, img."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))

    handle_startendtag = handle_starttag


def email_problems(html: str) -> list[str]:
    """What keeps an email's HTML from showing as written in Gmail and Outlook, or from being read aloud."""
    parsed = EmailHtml()
    parsed.feed(html)
    parsed.close()
    problems = [f"<{tag}> element" for tag in ("svg", "script") if tag in parsed.tags]
    problems += [f"<img src={image.get('src')}> has no alt text" for image in parsed.images if not image.get("alt")]
    problems += [f"{kind} in the HTML" for kind in ("javascript:", "data:image/svg") if kind in html.lower()]
    return problems


def test_the_check_finds_what_mail_clients_strip():
    assert email_problems('<p>ok</p><img src="https://x.test/a.png" alt="A wheel">') == []
    assert email_problems("<div><svg viewBox='0 0 1 1'></svg></div>") == ["<svg> element"]
    assert email_problems("<script>alert(1)</script>") == ["<script> element"]
    assert email_problems('<img src="a.png">') == ["<img src=a.png> has no alt text"]
    assert email_problems('<img src="a.png" alt="">') == ["<img src=a.png> has no alt text"]


def test_every_daily_email_passes_and_its_wheel_is_a_cacheable_png_the_site_serves(settings, client):
    settings.FORECAST_GENERATOR = OFFLINE
    send_parts_cache._parts.clear()  # rendered afresh from today's templates
    assert forecasts_prepare(DAY).failed == []
    for sign in SIGN_SLUGS:
        add_readers(1, sign=sign, time_zone="Pacific/Kiritimati", scheduled_from=datetime(2026, 12, 4, tzinfo=UTC))
        add_readers(1, sign=sign, time_zone="America/New_York", scheduled_from=datetime(2026, 12, 5, tzinfo=UTC))
    # 16:30 UTC on 4 December is 06:30 on the 5th in Kiritimati; 11:30 UTC on the 5th, 06:30 in New York.
    ids = deliveries_dispatch_due(datetime(2026, 12, 4, 16, 30, tzinfo=UTC), enqueue=False).delivery_ids
    ids += deliveries_dispatch_due(datetime(2026, 12, 5, 11, 30, tzinfo=UTC), enqueue=False).delivery_ids
    assert deliveries_send(ids).sent == 24

    wheel_urls = set()
    for message in mail.outbox:
        html, _ = message.alternatives[0]
        assert email_problems(html) == [], message.subject
        parsed = EmailHtml()
        parsed.feed(html)
        (wheel,) = [image for image in parsed.images if "wheel" in (image.get("class") or "")]
        assert wheel["alt"] == "Zodiac wheel of the sky at noon UTC on 5 December 2026"
        wheel_urls.add(wheel["src"])
    # One image for the date, the same address for every reader: a mail proxy fetches it once.
    (url,) = wheel_urls
    assert url == f"{settings.SITE_URL}/sky/wheel-1/2026-12-05.png"

    response = client.get(urlsplit(url).path)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("PNG", (PNG_SIZE, PNG_SIZE))
    assert response.content == noon_wheel_png(DAY)


def test_the_wheel_png_draws_the_dates_sky_and_bad_dates_are_a_404(client):
    first = Image.open(io.BytesIO(client.get("/sky/wheel-1/2026-12-05.png").content)).convert("RGB")
    other = Image.open(io.BytesIO(client.get("/sky/wheel-1/2027-03-20.png").content)).convert("RGB")
    # The sign ring is the same; the bodies and aspect lines of another date are not.
    assert first.getpixel((320, 20)) == other.getpixel((320, 20))
    assert first.tobytes() != other.tobytes()
    # Drawn, not blank: the ring's four element colours are there.
    colours = {colour for _, colour in first.getcolors(maxcolors=1 << 16)}
    assert {(0xFB, 0xE3, 0xD6), (0xE6, 0xEF, 0xD8), (0xFD, 0xF6, 0xD3), (0xDB, 0xE9, 0xF6)} <= colours
    for bad in ("2026-13-01", "0001-01-01", "tomorrow"):
        assert client.get(f"/sky/wheel-1/{bad}.png").status_code == 404
