"""The site's pages on a phone (390 x 844): nothing wider than the screen, and a screenshot of each."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.scheduling import local_date_of
from accounts.tests.factories import PASSWORD, SubscriptionFactory, UserFactory
from accounts.unsubscribe import unsubscribe_url
from forecasts.models import Forecast
from forecasts.sending.outbox import outbox_messages
from forecasts.writing.generation import forecasts_prepare
from tests.support.browser import PHONE, has_horizontal_overflow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

READER_ZONE = "Pacific/Auckland"


def test_every_page_fits_a_phone_screen(browser, site):
    reader = UserFactory(email="phone.reader@example.test")
    subscription = SubscriptionFactory(user=reader, sign="capricorn", time_zone=READER_ZONE)
    now = timezone.now()
    for day in {now.date(), local_date_of(now, READER_ZONE)}:  # public pages use UTC, the dashboard local time
        assert forecasts_prepare(day).failed == []
    headline = Forecast.objects.get(date=local_date_of(now, READER_ZONE), sign="capricorn").headline

    page = browser.page(viewport=PHONE)
    too_wide = []

    def check(name: str, path: str) -> None:
        if path:
            page.goto(f"{site.url}{path}")
        if has_horizontal_overflow(page):
            too_wide.append(f"{name} ({page.url}): {widest_elements(page)}")
        browser.screenshot(page, f"phone-{name}")

    check("landing", "/")
    check("signup", "/accounts/signup/")
    check("login", "/accounts/login/")
    page.get_by_label("Email").fill(reader.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/portal/")
    assert headline in page.inner_text(".forecast-headline")
    assert page.locator(".forecast .sky-wheel svg").is_visible()
    check("dashboard", "")
    check("preferences", "/portal/preferences/")
    check("your-data", "/portal/account/")
    check("horoscopes-today", "/today/")
    check("sign", "/signs/capricorn/")
    check("sign-day", f"/signs/capricorn/{now.date().isoformat()}/?tz={READER_ZONE}")
    check("unsubscribe-confirm", unsubscribe_url(subscription).removeprefix(site.url))
    assert "Unsubscribe?" in page.inner_text("h1")

    # The local outbox, where a reader in development reads their email.
    call_command(
        "send_test_email", reader.email, "--sign", "capricorn", "--time-zone", READER_ZONE, stdout=io.StringIO()
    )
    [email] = outbox_messages()
    check("outbox", "/outbox/")
    assert page.locator(".messages").count() == 0  # the emails are listed once, not as flash messages too
    assert page.get_by_role("link", name="[Test] Capricorn").is_visible()
    check("outbox-email", f"/outbox/{email.name}/")

    assert not too_wide, "\n".join(too_wide)
    assert browser.csp_violations() == []


def widest_elements(page) -> list[str]:
    """The elements that stick out past the right edge of the screen, to say what to fix."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('body *'))
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 8)
            .map(el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
                 ? '.' + el.className.trim().split(/\\s+/).join('.') : '')
                 + ' ' + Math.round(el.getBoundingClientRect().right) + 'px')"""
    )
