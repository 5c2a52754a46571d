"""The whole Cognito login, against a real OAuth2/OIDC server standing in for the hosted UI.

tests/oidc/server.js (npm oidc-provider) serves /oauth2/authorize, /oauth2/token and
/oauth2/userInfo on loopback with its development login and consent pages; the site runs on
pytest-django's live server. A `requests` session plays the browser: it follows the redirects
and fills in the stand-in's forms. Login "alice" there is alice@example.test, verified.
"""

import html
import re
from datetime import timedelta
from urllib.parse import urljoin

import pytest
import requests
import time_machine
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.utils import timezone

from accounts import services
from accounts.models import Subscription, User
from accounts.tests.factories import PASSWORD, SubscriptionFactory, UserFactory
from tests.oidc.stand_in import OidcStandIn
from tests.support.cognito import oidc_stand_in, switch_on_cognito

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def oidc(django_db_setup, live_server, artifacts_dir):
    with oidc_stand_in(live_server.url, artifacts_dir / "oidc-stand-in.log") as server:
        yield server


@pytest.fixture
def cognito(settings, oidc):
    """Cognito switched on by settings alone, pointed at the stand-in."""
    switch_on_cognito(settings, oidc.url, oidc.provider_settings())
    return oidc


class Browser:
    """A cookie-keeping HTTP client that goes through the login like a person would."""

    def __init__(self, site: str, oidc: OidcStandIn) -> None:
        self.site = site
        self.oidc = oidc
        self.session = requests.Session()

    def csrf_post(self, page: requests.Response, action: str, data: dict) -> requests.Response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return self.session.post(urljoin(page.url, html.unescape(action)), data={"csrfmiddlewaretoken": token, **data})

    def cognito_login(self, login: str, *, consent: bool = True) -> requests.Response:
        page = self.session.get(self.site + "/accounts/login/")
        button = re.search(
            r'<form method="post" action="([^"]+)" class="provider-form">.*?Continue with Cognito', page.text, re.S
        )
        assert button, "the login page offers Cognito"
        return self.through_provider(self.csrf_post(page, button.group(1), {}), login, consent=consent)

    def through_provider(self, response: requests.Response, login: str, *, consent: bool = True) -> requests.Response:
        """Fill in the stand-in's login and consent pages until it sends us back to the site."""
        for _ in range(6):
            if not response.url.startswith(self.oidc.url + "/interaction/"):
                return response
            assert response.status_code == 200, response.text
            text = response.text
            submit = urljoin(response.url, html.unescape(re.search(r'<form[^>]*action="([^"]+)"', text).group(1)))
            if 'name="prompt" value="login"' in text:
                response = self.session.post(submit, data={"prompt": "login", "login": login, "password": "any"})
            elif 'name="prompt" value="consent"' in text and consent:
                response = self.session.post(submit, data={"prompt": "consent"})
            else:
                abort = re.search(r'href="([^"]+/abort)"', text).group(1)
                response = self.session.get(urljoin(response.url, html.unescape(abort)))
        raise AssertionError(f"the login did not finish: {response.url}")


@pytest.fixture
def browser(live_server, cognito):
    return lambda: Browser(live_server.url, cognito)


def test_a_new_cognito_user_signs_in_and_their_subscription_is_confirmed_at_once(browser, live_server):
    alice = browser()
    page = alice.cognito_login("alice")
    assert page.status_code == 200
    assert page.url == live_server.url + "/portal/preferences/"
    assert "Start your daily horoscope" in page.text

    user = User.objects.get(email="alice@example.test")
    assert user.first_name == "Alice" and not user.has_usable_password()
    account = SocialAccount.objects.get(user=user)
    assert (account.provider, account.uid) == ("amazon_cognito", "alice")
    assert EmailAddress.objects.get(user=user).verified

    response = alice.csrf_post(
        page,
        "/portal/preferences/",
        {
            "sign": "gemini",
            "time_zone": "Europe/Lisbon",
            "delivery_time": "06:00",
            "topics": ["love", "growth"],
        },
    )
    assert response.url == live_server.url + "/portal/" and "Gemini" in response.text
    subscription = Subscription.objects.get(user=user)
    assert subscription.status == Subscription.Status.ACTIVE and subscription.next_send_at is not None


def test_a_returning_cognito_user_gets_the_same_account(browser, live_server):
    browser().cognito_login("bob")
    user = User.objects.get(email="bob@example.test")
    SubscriptionFactory(user=user, sign="taurus")

    page = browser().cognito_login("bob")  # a new browser: the stand-in asks for the login again
    assert page.url == live_server.url + "/portal/"
    assert "Taurus" in page.text
    assert User.objects.filter(email="bob@example.test").count() == 1
    assert SocialAccount.objects.filter(user=user).count() == 1


def test_a_cognito_login_joins_the_existing_local_account_with_that_email(browser, live_server):
    carol = UserFactory(email="carol@example.test")
    SubscriptionFactory(user=carol, sign="libra")

    page = browser().cognito_login("carol")
    assert page.url == live_server.url + "/portal/" and "Libra" in page.text
    assert User.objects.filter(email__iexact="carol@example.test").count() == 1
    account = SocialAccount.objects.get(provider="amazon_cognito", uid="carol")
    assert account.user_id == carol.pk
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)  # a verified local account keeps its password


def test_joining_an_unverified_local_account_verifies_it_and_locks_out_its_password(browser, live_server):
    # Someone signed up with erin's address but never confirmed it; erin now logs in with Cognito.
    erin = UserFactory(email="erin@example.test", verified=False)
    subscription = services.subscription_create(user=erin, sign="aquarius")
    assert subscription.status == "pending"

    page = browser().cognito_login("erin")
    assert page.url == live_server.url + "/portal/"
    erin.refresh_from_db()
    assert not erin.has_usable_password()  # whoever chose that password cannot log in with it
    assert EmailAddress.objects.get(user=erin).verified
    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert User.objects.count() == 1


def test_denied_consent_shows_a_clear_message_and_creates_no_account(browser):
    page = browser().cognito_login("dave", consent=False)
    assert page.status_code == 200
    assert "You did not allow Daily Horoscope to use your sign-in" in page.text
    assert "you are not logged in and we created no account" in page.text
    assert not User.objects.filter(email="dave@example.test").exists()
    assert not SocialAccount.objects.exists()


def test_a_cognito_only_reader_deletes_their_account_after_a_fresh_cognito_login(browser, live_server):
    frank = browser()
    frank.cognito_login("frank")
    user = User.objects.get(email="frank@example.test")
    assert not user.has_usable_password()

    with time_machine.travel(timezone.now() + timedelta(minutes=10)):  # the login is no longer fresh
        page = frank.session.get(live_server.url + "/portal/account/delete/")
        assert "Sign in again with Cognito" in page.text and 'name="password"' not in page.text
        refused = frank.csrf_post(page, "/portal/account/delete/", {})
        assert refused.status_code == 200 and User.objects.filter(pk=user.pk).exists()

        again = re.search(r'<form method="post" action="([^"]+)">\s*<input[^>]*csrfmiddlewaretoken', page.text)
        action = again.group(1)
        back = frank.through_provider(frank.csrf_post(page, action, {}), "frank")
        assert back.url == live_server.url + "/portal/account/delete/"
        assert "Delete my account for good" in back.text

        done = frank.csrf_post(back, "/portal/account/delete/", {})
    assert done.url == live_server.url + "/"
    assert "everything we stored about you are deleted" in done.text
    assert not User.objects.filter(email="frank@example.test").exists()
    assert not SocialAccount.objects.filter(uid="frank").exists()
