"""Every page at 1280 and 390 px, and the sign-up page's promises in a real browser.

Screenshots of each page at both widths go to test-artifacts/screenshots/ (`<page>-<width>.png`).
At 390 px no page may be wider than the screen, and sign-up must fit one 390 x 844 screen down
to its submit button. Then the time-zone picker (with and without scripts), the cusp question
keeping what was typed, and the confirmation link logging in from another browser.
"""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Subscription
from accounts.scheduling import local_date_of
from accounts.tests.factories import PASSWORD, SubscriptionFactory, UserFactory
from accounts.time_zones import zone_label
from forecasts.sending.outbox import outbox_messages, read_message
from forecasts.writing.generation import forecasts_prepare
from tests.browser.test_phone_pages import widest_elements
from tests.support.browser import DESKTOP, PHONE, has_horizontal_overflow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

READER_ZONE = "America/New_York"
WIDTHS = {1280: DESKTOP, 390: PHONE}
# What sign-up asks for, each of which must be on the first phone screen.
SIGNUP_FIELDS = ["email", "password1", "sign", "birth_date", "time_zone", "delivery_time"]


@pytest.fixture
def shots(artifacts_dir):
    folder = artifacts_dir / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def test_every_page_at_desktop_and_phone_width(browser, site, shots):
    reader = UserFactory(email="tour.reader@example.test")
    SubscriptionFactory(user=reader, sign="aries", time_zone=READER_ZONE)
    now = timezone.now()
    for day in {now.date(), local_date_of(now, READER_ZONE)}:  # public pages use UTC, the dashboard local time
        assert forecasts_prepare(day).failed == []
    public = {
        "home": "/",
        "sign": "/signs/aries/",
        "daily-reading": f"/signs/aries/{now.date().isoformat()}/",
        "glossary": "/glossary/",
        "about": "/about/",
        "privacy": "/privacy/",
        "terms": "/terms/",
        "signup": "/accounts/signup/",
        "login": "/accounts/login/",
        "admin-login": "/admin/login/",
    }
    too_wide, saved = [], []

    for width, viewport in WIDTHS.items():
        page = browser.page(viewport=viewport, timezone_id=READER_ZONE)

        def visit(name: str, path: str, page=page, width=width) -> None:
            response = page.goto(f"{site.url}{path}")
            assert response.status < 400, f"{name}: {response.status}"
            if width == 390 and has_horizontal_overflow(page):
                too_wide.append(f"{name} ({page.url}): {widest_elements(page)}")
            shot = shots / f"{name}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            saved.append(shot)

        for name, path in public.items():
            visit(name, path)
        for name, href in (("About", "/about/"), ("Privacy", "/privacy/"), ("Terms", "/terms/")):
            assert page.locator(".site-footer").get_by_role("link", name=name).get_attribute("href") == href
        assert page.locator(".site-footer a[href^='mailto:']").count() == 1

        page.goto(f"{site.url}/accounts/login/")
        page.get_by_label("Email").fill(reader.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{site.url}/portal/")
        visit("dashboard", "/portal/")
        visit("preferences", "/portal/preferences/")
        assert page.get_by_label("Time zone").input_value() == zone_label(READER_ZONE)

    assert not too_wide, "\n".join(too_wide)
    assert all(shot.stat().st_size > 5_000 for shot in saved) and len(saved) == 2 * (len(public) + 2)
    assert browser.csp_violations() == []


@pytest.mark.parametrize("scripts", [True, False], ids=["with-js", "without-js"])
def test_sign_up_fits_one_phone_screen_down_to_its_button(browser, site, shots, scripts):
    page = browser.page(viewport=PHONE, timezone_id=READER_ZONE, java_script_enabled=scripts)
    page.goto(f"{site.url}/accounts/signup/")
    button = page.get_by_role("button", name="Sign up").bounding_box()
    assert button["y"] + button["height"] <= PHONE["height"], f"the button ends at {button['y'] + button['height']}px"
    for name in SIGNUP_FIELDS:
        box = page.locator(f"#id_{name}").bounding_box()
        assert box and box["y"] + box["height"] <= PHONE["height"], name
    assert not has_horizontal_overflow(page)
    page.screenshot(path=str(shots / f"signup-first-screen-{'js' if scripts else 'no-js'}-390.png"))


def test_the_time_zone_is_found_by_city_with_its_offset_and_checked_on_the_server(browser, site):
    page = browser.page(viewport=PHONE, timezone_id="Asia/Kolkata")
    page.goto(f"{site.url}/accounts/signup/?sign=libra")
    zone = page.locator("#id_time_zone")
    expect(zone).to_have_value(zone_label("Asia/Kolkata"))  # the browser's zone: "Kolkata (UTC+5:30)"
    assert page.get_by_label("Your sun sign").input_value() == "libra"  # from the sign page's link
    # The suggestions: one per city, each with the offset its clocks show now.
    options = page.locator("datalist#id_time_zone-choices option")
    assert 380 < options.count() < 480
    assert page.locator("datalist option[data-zone='America/New_York']").get_attribute("value") == zone_label(
        "America/New_York"
    )

    page.get_by_label("Email").fill("picker@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    zone.fill("Atlantis")
    page.get_by_role("button", name="Sign up").click()
    field = page.locator(".field-time_zone")
    expect(field).to_have_class(re.compile(r"\bhas-error\b"))
    assert "We do not know that time zone" in field.inner_text()
    assert page.get_by_label("Email").input_value() == "picker@example.test"

    zone.fill("lisbon")
    page.get_by_label("Password").fill(PASSWORD)  # an error page never sends a password back
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/accounts/confirm-email/")
    assert Subscription.objects.get(user__email="picker@example.test").time_zone == "Europe/Lisbon"


def test_the_picker_works_without_scripts_on_the_preferences_page(browser, site):
    reader = UserFactory(email="noscript@example.test")
    page = browser.page(java_script_enabled=False)
    page.goto(f"{site.url}/accounts/login/")
    page.get_by_label("Email").fill(reader.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/portal/preferences/")  # no subscription yet
    page.get_by_label("Your sun sign").select_option("taurus")
    page.locator("#id_time_zone").fill("Japan")
    page.get_by_role("button", name="Start my horoscope").click()
    page.wait_for_url(f"{site.url}/portal/")
    assert Subscription.objects.get(user=reader).time_zone == "Asia/Tokyo"
    page.goto(f"{site.url}/portal/preferences/")
    assert page.locator("#id_time_zone").input_value() == zone_label("Asia/Tokyo")


def test_a_cusp_birthday_is_a_question_that_keeps_everything_typed(browser, site, shots):
    page = browser.page(viewport=PHONE, timezone_id=READER_ZONE)
    page.goto(f"{site.url}/accounts/signup/")
    page.get_by_label("Email").fill("cusp@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Or birth date").fill("1991-11-22")
    page.get_by_role("button", name="Sign up").click()

    question = page.locator(".field-sign")
    expect(question).to_have_class(re.compile(r"\bis-question\b"))
    assert page.locator(".has-error, .errorlist, [aria-invalid]").count() == 0  # not styled as an error
    assert "22 November is on the cusp of Scorpio and Sagittarius" in question.inner_text()
    page.screenshot(path=str(shots / "signup-cusp-question-390.png"), full_page=True)
    assert page.get_by_label("Email").input_value() == "cusp@example.test"
    assert page.get_by_label("Password").input_value() == PASSWORD
    assert page.get_by_label("Or birth date").input_value() == "1991-11-22"
    assert page.locator("#id_time_zone").input_value() == zone_label(READER_ZONE)

    page.get_by_label("Sagittarius").check()
    page.get_by_role("button", name="Sign up").click()  # nothing typed again
    page.wait_for_url("**/accounts/confirm-email/")
    subscription = Subscription.objects.get(user__email="cusp@example.test")
    assert (subscription.sign, subscription.time_zone) == ("sagittarius", READER_ZONE)


def test_confirming_from_another_browser_logs_in_and_lands_on_the_dashboard(browser, site):
    laptop = browser.page(timezone_id=READER_ZONE)
    laptop.goto(f"{site.url}/accounts/signup/")
    laptop.get_by_label("Email").fill("two.devices@example.test")
    laptop.get_by_label("Password").fill(PASSWORD)
    laptop.get_by_label("Your sun sign").select_option("gemini")
    laptop.get_by_role("button", name="Sign up").click()
    laptop.wait_for_url("**/accounts/confirm-email/")

    [message] = [read_message(path) for path in outbox_messages()]
    body = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(rf"{re.escape(site.url)}/accounts/confirm-email/[^/\s]+/", body).group(0)

    phone = browser.page(viewport=PHONE, timezone_id=READER_ZONE)  # no cookies from the laptop
    phone.goto(link)
    phone.get_by_role("button", name="Yes, confirm it").click()
    phone.wait_for_url(f"{site.url}/portal/")
    assert "Gemini" in phone.inner_text("main")
    assert phone.get_by_role("button", name="Log out").is_visible()
    assert Subscription.objects.get(user__email="two.devices@example.test").status == Subscription.Status.ACTIVE
