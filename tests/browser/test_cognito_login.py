"""Continue with Cognito, in the browser: the npm oidc-provider stands in for the hosted UI.

tests/oidc/server.js serves Cognito's /oauth2/* paths on loopback with its development login
and consent pages; any login name is accepted ("grace" is grace@example.test, verified).
"""

import copy

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts.models import Subscription, User
from tests.support.cognito import oidc_stand_in, switch_on_cognito

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def oidc(django_db_setup, live_server, artifacts_dir):
    with oidc_stand_in(live_server.url, artifacts_dir / "oidc-stand-in-browser.log") as server:
        yield server


@pytest.fixture
def cognito(settings, site, oidc):
    """Cognito switched on as settings.py does it from COGNITO_DOMAIN and COGNITO_CLIENT_ID."""
    switch_on_cognito(settings, oidc.url, oidc.provider_settings())
    # The login form posts to the site, which redirects to the hosted UI: form-action must allow it.
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = ["'self'", oidc.url]
    settings.CONTENT_SECURITY_POLICY = policy
    return oidc


def test_a_new_reader_continues_with_cognito_and_starts_their_horoscope(browser, site, cognito):
    page = browser.page()
    page.goto(f"{site.url}/accounts/login/")
    page.get_by_role("button", name="Continue with Cognito").click()

    # The stand-in's login page, then its consent page.
    page.wait_for_url(f"{cognito.url}/interaction/**")
    page.locator("input[name=login]").fill("grace")
    page.locator("input[name=password]").fill("any password")
    browser.screenshot(page, "cognito-01-hosted-login")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent to share the email and profile

    # Back on the site, logged in: a new reader chooses their preferences first.
    page.wait_for_url(f"{site.url}/portal/preferences/")
    assert "Start your daily horoscope" in page.inner_text("h1")
    assert page.get_by_role("button", name="Log out").is_visible()
    browser.screenshot(page, "cognito-02-new-reader-preferences")
    page.get_by_label("Your sun sign").select_option("libra")
    page.get_by_label("Time zone").fill("Lisbon")
    page.get_by_label("Delivery time").fill("06:30")
    page.get_by_role("button", name="Start my horoscope").click()
    page.wait_for_url(f"{site.url}/portal/")
    assert "Libra" in page.inner_text(".forecast h1")
    assert "Active" in page.inner_text(".status-badge")  # Cognito verified the address: no opt-in email

    user = User.objects.get(email="grace@example.test")
    assert SocialAccount.objects.get(user=user, provider="amazon_cognito").uid == "grace"
    subscription = Subscription.objects.get(user=user)
    assert (subscription.sign, subscription.time_zone, f"{subscription.delivery_time:%H:%M}") == (
        "libra",
        "Europe/Lisbon",
        "06:30",
    )
    assert browser.csp_violations() == []
