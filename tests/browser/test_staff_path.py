"""The staff path in Chromium: createsuperuser, log in, set up TOTP from the printed link, the admin.

accounts/tests/test_staff_mfa.py checks each rule of the path with Django's test client; this
walks it the way a new operator does (README "Admin", docs/operations.md "Staff: the admin and
two-factor sign-in"): the link comes from createsuperuser's output, the secret is copied off the
set-up page, the codes come from an RFC 6238 computation, as an authenticator app makes them.
The same staff member in a browser that never spent the link is sent to the staff page instead of
the enrolment form. Screenshots of each staff page at 1280 and 390 px go to
test-artifacts/screenshots/ (`staff-<page>-<width>.png`).
"""

import io
import re
import time

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command

from accounts.models import User
from accounts.tests.factories import PASSWORD
from horoscope_site.tests.test_deploy_checks import totp
from tests.support.browser import DESKTOP, PHONE, has_horizontal_overflow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMAIL = "first.admin@example.test"
WIDTHS = {1280: DESKTOP, 390: PHONE}
TOTP_PERIOD = 30
NO_LINK_MESSAGE = "Staff set up two-factor sign-in with a one-time link; here is how to get one."


@pytest.fixture
def shots(artifacts_dir):
    folder = artifacts_dir / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


class Screenshots:
    """Each staff page at both widths; at 390 px no page may be wider than the screen."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.saved = []
        self.too_wide = []

    def take(self, page, name: str) -> None:
        for width, viewport in WIDTHS.items():
            page.set_viewport_size(viewport)
            if width == 390 and has_horizontal_overflow(page):
                self.too_wide.append(f"{name} ({page.url})")
            path = self.folder / f"staff-{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            self.saved.append(path)
        page.set_viewport_size(DESKTOP)


def fresh_code(secret: str, not_code: str = "") -> str:
    """The app's current code, with time left to type it, and not one already used.

    allauth takes each code once (and no neighbouring time step), so a second code means waiting
    for the app to show the next one, as a person would.
    """
    while True:
        now = time.time()
        left = TOTP_PERIOD - now % TOTP_PERIOD
        code = totp(secret, now)
        if left > 5 and code != not_code:
            return code
        time.sleep(left + 0.5)


def log_in(page, site_url: str) -> None:
    page.goto(f"{site_url}/accounts/login/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site_url}/staff/")  # no confirmation email first: the address counts as confirmed


def test_createsuperuser_then_login_then_totp_from_the_printed_link_opens_the_admin(
    browser, site, shots, settings, monkeypatch
):
    settings.ADMIN_REQUIRE_MFA = True  # as in production
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    out = io.StringIO()
    call_command("createsuperuser", "--noinput", "--email", EMAIL, stdout=out)
    [link] = re.findall(rf"{re.escape(site.url)}/staff/two-factor/\S+/", out.getvalue())
    screenshots = Screenshots(shots)

    laptop = browser.page()
    log_in(laptop, site.url)
    main = laptop.locator("main")
    assert "Your account is staff" in main.inner_text()
    assert f"python manage.py staff_mfa_link {EMAIL}" in main.inner_text()
    screenshots.take(laptop, "home")

    # Without the link, the password alone does not open the enrolment form: the staff page says why.
    laptop.goto(f"{site.url}/admin/")
    laptop.wait_for_url(f"{site.url}/staff/?next=%2Fadmin%2F")
    laptop.goto(f"{site.url}/accounts/2fa/totp/activate/")
    laptop.wait_for_url(f"{site.url}/staff/")
    assert NO_LINK_MESSAGE in laptop.inner_text("body")
    assert "Setting it up needs a one-time link" in main.inner_text()
    screenshots.take(laptop, "no-link")

    # The printed link: opening it explains, only its button spends it.
    laptop.goto(link)
    assert f"This link lets {EMAIL} add an authenticator app" in main.inner_text()
    screenshots.take(laptop, "link")
    laptop.get_by_role("button", name="Set up my authenticator app").click()
    # allauth asks for the password again before adding a factor (a login does not count).
    laptop.wait_for_url(re.compile(re.escape(f"{site.url}/accounts/reauthenticate/")))
    screenshots.take(laptop, "confirm-password")
    laptop.get_by_label("Password").fill(PASSWORD)
    laptop.get_by_role("button", name="Confirm").click()
    laptop.wait_for_url(re.compile(re.escape(f"{site.url}/accounts/2fa/totp/activate/")))

    # The same staff member in another browser, without the link: still no enrolment, and the
    # link, spent by the laptop, says so.
    phone = browser.page(viewport=PHONE)
    log_in(phone, site.url)
    phone.goto(f"{site.url}/accounts/2fa/totp/activate/")
    phone.wait_for_url(f"{site.url}/staff/")
    assert NO_LINK_MESSAGE in phone.inner_text("body")
    assert phone.goto(link).status == 400
    assert "This link has been used already." in phone.locator("main").inner_text()
    assert phone.get_by_role("button", name="Set up my authenticator app").count() == 0
    screenshots.take(phone, "link-used")

    # Enrol: copy the secret off the page into the "app", type the code it shows.
    secret = laptop.get_by_label("Authenticator secret").input_value()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    screenshots.take(laptop, "totp")
    first_code = fresh_code(secret)
    laptop.get_by_label("Authenticator code").fill(first_code)
    laptop.get_by_role("button", name="Activate").click()
    # allauth shows the recovery codes next (each signs in once if the phone is lost).
    laptop.wait_for_url(f"{site.url}/accounts/2fa/recovery-codes/")
    assert Authenticator.objects.filter(user__email=EMAIL, type=Authenticator.Type.TOTP).exists()
    assert "Authenticator app activated." in laptop.inner_text("body")
    screenshots.take(laptop, "recovery-codes")

    # Once the codes are saved, one click goes on: the admin asks this session (begun with a
    # password) for a code from the app, then opens.
    laptop.get_by_role("link", name="Continue to the admin").click()
    laptop.wait_for_url(re.compile(re.escape(f"{site.url}/accounts/2fa/reauthenticate/")))
    screenshots.take(laptop, "code")
    laptop.get_by_label("Code").fill(fresh_code(secret, not_code=first_code))
    laptop.get_by_role("button", name="Confirm").click()
    laptop.wait_for_url(f"{site.url}/admin/")
    assert laptop.get_by_role("heading", name="Site administration").is_visible()
    assert laptop.get_by_role("link", name="Users", exact=True).is_visible()
    screenshots.take(laptop, "admin")

    assert User.objects.get(email=EMAIL).is_superuser
    assert not screenshots.too_wide, screenshots.too_wide
    assert all(shot.stat().st_size > 5_000 for shot in screenshots.saved)
    assert browser.csp_violations() == []
