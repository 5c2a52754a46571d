"""A visitor on a fresh site opens a sign page: the reading is there, and subscribing starts
with that sign chosen. Screenshots at 1280 and 390 px."""

import pytest
from django.utils import timezone

from forecasts.earth_dates import earliest_date
from forecasts.models import Forecast
from tests.support.browser import PHONE, has_horizontal_overflow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_visitor_reads_a_sign_page_on_a_fresh_site_and_subscribes_with_that_sign(browser, site):
    assert not Forecast.objects.exists()
    page = browser.page()
    before = earliest_date(timezone.now())
    # The server's first reading loads the composer's phrasebook (seconds on a busy machine).
    page.goto(f"{site.url}/signs/leo/", timeout=60_000)

    # Nothing was prepared: the page wrote the reading of the visitor's date (UTC-12's) itself.
    written = Forecast.objects.get(sign="leo")
    assert written.date in {before, earliest_date(timezone.now())}
    assert written.headline in page.inner_text("article")
    assert "being written" not in page.inner_text("article") and "check back" not in page.inner_text("article").lower()
    cta = page.get_by_role("link", name="Subscribe as Leo")
    assert cta.is_visible()
    browser.screenshot(page, "sign-page-visitor-1280")

    phone = browser.page(viewport=PHONE)
    phone.goto(f"{site.url}/signs/leo/")
    assert not has_horizontal_overflow(phone)
    assert phone.get_by_role("link", name="Subscribe as Leo").is_visible()
    browser.screenshot(phone, "sign-page-visitor-390")

    cta.click()
    page.wait_for_url("**/accounts/signup/?sign=leo")
    assert page.get_by_label("Your sun sign").input_value() == "leo"
    assert browser.csp_violations() == []
