"""Pages as a person sees them, in a real browser, at phone and desktop sizes."""

import pytest

from tests.support.browser import DESKTOP, PHONE, has_horizontal_overflow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("label", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_landing_page_fits_the_screen_and_leads_to_sign_up(chromium, live_server, artifacts_dir, label, viewport):
    page = chromium.new_page(viewport=viewport)
    try:
        page.goto(f"{live_server.url}/")
        assert "real sky" in page.inner_text("h1")
        assert not has_horizontal_overflow(page)
        page.screenshot(path=str(artifacts_dir / f"landing-{label}.png"), full_page=True)
        page.get_by_role("link", name="Get my daily horoscope").click()
        page.wait_for_url("**/accounts/signup/")
    finally:
        page.close()
