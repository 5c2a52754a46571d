"""A reader's whole journey in the browser, from sign-up to unsubscribing from the email's link.

Every email is read where a person in development reads it: the site's own /outbox/ pages.
Forecasts are written by the offline composer through the real service, and the daily send
runs in-process (`dispatch_due --sync`) through the outbox backend.
"""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Subscription, User
from accounts.scheduling import local_date_of
from accounts.tests.factories import PASSWORD
from accounts.time_zones import zone_label
from forecasts.models import Delivery, Forecast
from forecasts.sending.outbox import outbox_messages, read_message
from forecasts.writing.generation import forecasts_prepare

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMAIL = "journey@example.test"
BROWSER_ZONE = "Asia/Tokyo"  # where the browser says it is
READER_ZONE = "America/Sao_Paulo"  # what the reader chooses instead


def open_email(page, site_url: str, subject_contains: str) -> str:
    """Open the newest outbox email whose subject contains the text; returns its outbox name."""
    page.goto(f"{site_url}/")
    page.get_by_role("link", name="Local outbox").click()
    page.wait_for_url("**/outbox/")
    page.get_by_role("link", name=re.compile(re.escape(subject_contains))).first.click()
    page.wait_for_url(re.compile(r"/outbox/[0-9TZ]+-[0-9a-f]{8}\.eml/$"))
    return page.url.rstrip("/").rsplit("/", 1)[1]


def test_sign_up_confirm_read_the_forecast_get_the_email_and_unsubscribe_from_it(browser, site):
    page = browser.page(timezone_id=BROWSER_ZONE)

    # Sign up from the landing page, choosing sign, time zone and delivery time.
    page.goto(f"{site.url}/")
    page.get_by_role("link", name="Get my daily horoscope").click()
    page.wait_for_url("**/accounts/signup/")
    zone = page.get_by_label("Time zone")
    assert zone.input_value() == zone_label(BROWSER_ZONE)  # suggested from the browser by js/timezone.js
    assert page.get_by_text("Suggested from your browser").is_visible()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Your sun sign").select_option("scorpio")
    zone.fill("Sao Paulo")  # found by city
    page.get_by_label("Arrives at").fill("07:30")
    browser.screenshot(page, "journey-01-signup")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/accounts/confirm-email/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")

    subscription = Subscription.objects.get(user__email=EMAIL)
    assert (subscription.sign, subscription.time_zone, subscription.status) == ("scorpio", READER_ZONE, "pending")
    assert f"{subscription.delivery_time:%H:%M}" == "07:30"

    # The confirmation email, read in the outbox; its link confirms the address and logs in.
    open_email(page, site.url, "Confirm your address")
    browser.screenshot(page, "journey-02-confirmation-email")
    page.get_by_role("link", name=re.compile(r"accounts.confirm-email")).click()
    page.wait_for_url("**/accounts/confirm-email/*/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your address")
    page.get_by_role("button", name="Yes, confirm it").click()
    page.wait_for_url(f"{site.url}/portal/")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    status = page.locator(".status-card")
    assert "Active" in status.inner_text() and "07:30, America/Sao_Paulo" in status.inner_text()
    # A fresh site: the dashboard writes the reading of the reader's own date there and then.
    first = Forecast.objects.get(date=local_date_of(timezone.now(), READER_ZONE), sign="scorpio")
    assert first.headline in page.inner_text(".forecast")

    # Preferences: the choices made at sign-up are there; move the delivery time.
    page.get_by_role("navigation", name="Your account").get_by_role("link", name="Preferences").click()
    page.wait_for_url("**/portal/preferences/")
    assert page.get_by_label("Your sun sign").input_value() == "scorpio"
    assert page.get_by_label("Time zone").input_value() == zone_label(READER_ZONE)  # not the browser's
    page.get_by_label("Delivery time").fill("06:45")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{site.url}/portal/")
    assert "Your preferences are saved." in page.inner_text(".messages")
    subscription.refresh_from_db()
    assert f"{subscription.delivery_time:%H:%M}" == "06:45"

    # Once today's forecasts are written, the dashboard shows the reader's, with the sky wheel.
    today = local_date_of(timezone.now(), READER_ZONE)
    assert forecasts_prepare(today).failed == []
    forecast = Forecast.objects.get(date=today, sign="scorpio")
    page.reload()
    assert forecast.headline in page.inner_text(".forecast-headline")
    wheel = page.locator(".forecast .sky-wheel svg")
    assert wheel.is_visible()
    assert "<svg" in page.content()
    browser.screenshot(page, "journey-03-dashboard")

    # The send: dispatch what is due just after the reader's next send time, in this process.
    subscription.refresh_from_db()
    send_at = subscription.next_send_at + timedelta(minutes=1)
    forecasts_prepare(local_date_of(subscription.next_send_at, READER_ZONE))
    out = io.StringIO()
    call_command("dispatch_due", "--now", send_at.isoformat(), "--sync", stdout=out)
    assert "Sent 1, failed 0" in out.getvalue(), out.getvalue()
    delivery = Delivery.objects.get(subscription=subscription)
    assert delivery.status == Delivery.Status.SENT
    # The email carries the forecast of the reader's next send date: today's before 06:45 in
    # São Paulo, tomorrow's after.
    forecast = Forecast.objects.get(date=delivery.local_date, sign="scorpio")

    [daily] = [path for path in outbox_messages() if "Scorpio" in read_message(path)["Subject"]]
    message = read_message(daily)
    unsubscribe = message["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe.startswith(f"{site.url}/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The daily email in the outbox: headers, the HTML part, and its visible unsubscribe link.
    name = open_email(page, site.url, "Scorpio")
    assert name == daily.name
    page.get_by_text("Headers").click()
    assert "List-Unsubscribe-Post" in page.inner_text(".headers")
    html_part = page.locator("iframe.email-frame").get_attribute("src")
    assert html_part == f"/outbox/{name}/html"
    email = page.frame_locator("iframe.email-frame")
    assert email.get_by_role("heading", name=forecast.headline).is_visible()
    # The sky wheel: a PNG the site serves (mail clients strip SVG), loaded, with its alt text.
    assert email.locator("svg").count() == 0
    wheel = email.get_by_role("img", name=re.compile(r"^Zodiac wheel of the sky at noon UTC on "))
    assert wheel.evaluate("image => image.complete && image.naturalWidth") == 640
    link = email.get_by_role("link", name="Unsubscribe", exact=True)
    assert link.is_visible() and link.get_attribute("href") == unsubscribe
    page.locator("iframe.email-frame").scroll_into_view_if_needed()  # off-screen frames are not painted
    browser.screenshot(page, "journey-04-daily-email-in-outbox")
    whole_email = browser.page()
    whole_email.goto(f"{site.url}{html_part}")
    browser.screenshot(whole_email, "journey-05-daily-email-html-part")
    # Follow the email's visible link in the tab (a forced click inside the script-less sandboxed
    # preview frame did not always navigate in CI; the href is checked against the header above).
    page.goto(link.get_attribute("href"))
    page.wait_for_url(unsubscribe)
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe?")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE  # a GET (a link scanner) changes nothing
    browser.screenshot(page, "journey-06-unsubscribe-confirm")
    page.get_by_role("button", name="Unsubscribe", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")

    # Still logged in: the dashboard shows the new status.
    page.goto(f"{site.url}/portal/")
    assert "Unsubscribed" in page.inner_text(".status-badge")
    assert page.get_by_role("button", name="Resubscribe").is_visible()
    browser.screenshot(page, "journey-07-dashboard-unsubscribed")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert User.objects.filter(email=EMAIL).count() == 1
    assert browser.csp_violations() == []
