"""Local accounts through allauth: sign-up with preferences, mandatory verification, rate limits, looks."""

import re
from html import escape

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from tests.support.cognito import switch_on_cognito

pytestmark = pytest.mark.django_db


def signup_data(**overrides) -> dict:
    data = {
        "email": "new.reader@example.test",
        "password1": PASSWORD,
        "sign": "",
        "birth_date": "1987-08-05",
        "time_zone": "Asia/Tokyo",
        "delivery_time": "07:30",
    }
    data.update(overrides)
    return data


def link_in(message, pattern: str) -> str:
    match = re.search(pattern, message.body)
    assert match, message.body
    return match.group(0)


def test_sign_up_starts_a_pending_subscription_that_the_verification_link_confirms(client, mailoutbox):
    page = client.get("/accounts/signup/").content.decode()
    assert "data-timezone-suggest" in page and "js/timezone.js" in page

    response = client.post("/accounts/signup/", signup_data())
    assert response.status_code == 302
    user = User.objects.get(email="new.reader@example.test")
    subscription = user.subscription
    assert (subscription.sign, subscription.time_zone, subscription.status) == ("leo", "Asia/Tokyo", "pending")
    assert subscription.next_send_at is None  # no mail before the address is verified
    assert not EmailAddress.objects.get(user=user).verified

    # Unverified: logging in is refused and the subscription stays pending.
    client.logout()
    response = client.post("/accounts/login/", {"login": "new.reader@example.test", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    assert client.get("/portal/").status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == "pending"

    [*_, message] = mailoutbox
    assert message.subject == "Daily Horoscope: Confirm your address to start your daily horoscope"
    link = link_in(message, r"http://testserver/accounts/confirm-email/[^/\s]+/")
    page = client.get(link)
    assert page.status_code == 200 and "Yes, confirm it" in page.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == "pending"  # a GET (a mail scanner) confirms nothing

    response = client.post(link)
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.confirmed_at is not None
    assert subscription.next_send_at is not None
    assert client.get("/portal/").status_code == 200  # and now logged in


def test_sign_up_on_a_cusp_date_asks_which_sign_and_keeps_everything_typed(client):
    response = client.post("/accounts/signup/", signup_data(birth_date="1987-08-22"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "22 August is on the cusp of Leo and Virgo" in html
    assert 'type="radio" name="sign" value="leo"' in html and 'type="radio" name="sign" value="virgo"' in html
    # A question, not an error: no error styling, nothing typed is lost (the password too).
    assert "has-error" not in html and "errorlist" not in html
    assert re.search(r'class="field field-sign is-question".*?Leo or Virgo\?', html, re.S)
    assert 'value="new.reader@example.test"' in html and 'value="1987-08-22"' in html
    assert f'name="password1" value="{escape(PASSWORD)}"' in html
    assert not User.objects.exists()
    client.post("/accounts/signup/", signup_data(birth_date="1987-08-22", sign="virgo"))
    assert User.objects.get().subscription.sign == "virgo"


def test_a_password_is_never_sent_back_with_an_error(client):
    response = client.post("/accounts/signup/", signup_data(email="not an address", birth_date="1987-08-22"))
    assert PASSWORD not in response.content.decode() and escape(PASSWORD) not in response.content.decode()


def test_sign_up_errors_are_shown_next_to_their_fields(client):
    response = client.post("/accounts/signup/", signup_data(time_zone="Nowhere/Special", password1="12345678"))
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"field-time_zone has-error.*?We do not know that time zone", html, re.S)
    assert re.search(r"field-password1 has-error.*?entirely numeric", html, re.S)
    assert not User.objects.exists()


def test_the_time_zone_is_found_by_city_and_stored_as_its_iana_name(client):
    response = client.post("/accounts/signup/", signup_data(time_zone="new york"))
    assert response.status_code == 302
    assert User.objects.get().subscription.time_zone == "America/New_York"


def test_the_sign_up_page_fits_a_phone_one_password_and_no_paragraphs(client):
    html = client.get("/accounts/signup/").content.decode()
    assert 'name="password2"' not in html
    assert "clocks" not in html  # the daylight-saving rule lives on the preferences page
    assert 'href="/terms/"' in html and 'href="/privacy/"' in html


def test_the_sign_up_page_takes_a_sign_from_the_link(client):
    html = client.get("/accounts/signup/?sign=aries").content.decode()
    assert '<option value="aries" selected>' in html
    html = client.get("/accounts/signup/?sign=ophiuchus").content.decode()
    assert '<option value="" selected>' in html  # an unknown sign is ignored


def test_login_is_locked_after_repeated_wrong_passwords(client):
    UserFactory(email="target@example.test")
    for _ in range(5):
        response = client.post("/accounts/login/", {"login": "target@example.test", "password": "wrong guess"})
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session
    # Even the right password is refused now: the limit counts per address, in the cache.
    response = client.post("/accounts/login/", {"login": "target@example.test", "password": PASSWORD})
    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()


def test_login_works_with_the_right_password_and_records_the_session(client):
    user = UserFactory(email="fine@example.test")
    response = client.post(
        "/accounts/login/", {"login": "fine@example.test", "password": PASSWORD}, HTTP_USER_AGENT="Test browser"
    )
    assert response.status_code == 302 and response["Location"] == "/portal/"
    [session] = UserSession.objects.filter(user=user)
    assert session.session_key == client.session.session_key and session.user_agent == "Test browser"


@pytest.mark.parametrize(
    ("url", "heading"),
    [
        ("/accounts/login/", "Log in"),
        ("/accounts/signup/", "Get your daily horoscope"),
        ("/accounts/password/reset/", "Reset your password"),
        ("/accounts/password/reset/done/", "Check your inbox"),
        ("/accounts/confirm-email/not-a-real-key/", "Confirm your address"),
        ("/accounts/confirm-email/", "Check your inbox"),
        ("/accounts/password/reset/key/1-bad/", "This link does not work"),
        ("/accounts/3rdparty/login/cancelled/", "Login cancelled"),
        ("/accounts/3rdparty/login/error/", "We could not log you in"),
    ],
)
def test_allauth_pages_wear_the_site_look(client, url, heading):
    response = client.get(url, follow=True)
    assert response.status_code == (401 if "error" in url else 200)
    html = response.content.decode()
    assert 'class="site-header"' in html and "/static/css/accounts.css" in html
    assert f"<h1>{heading}</h1>" in html
    assert "Menu:" not in html  # allauth's bare default layout is not used


def test_logout_page_wears_the_site_look(reader_client):
    html = reader_client.get("/accounts/logout/").content.decode()
    assert 'class="site-header"' in html and "<h1>Log out?</h1>" in html


def test_cognito_button_appears_only_when_cognito_is_configured(client, settings):
    assert "Continue with Cognito" not in client.get("/accounts/login/").content.decode()
    switch_on_cognito(settings, "https://example.auth.us-east-1.amazoncognito.com")
    for url in ("/accounts/login/", "/accounts/signup/"):
        html = client.get(url).content.decode()
        assert "Continue with Cognito" in html
        assert 'action="/accounts/amazon-cognito/login/?process=login"' in html


def test_portal_pages_require_login(client):
    for url in (
        "/portal/",
        "/portal/preferences/",
        "/portal/account/",
        "/portal/account/export/",
        "/portal/account/delete/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/3rdparty/",
        "/accounts/2fa/",
        "/accounts/sessions/",
        "/accounts/reauthenticate/",
    ],
)
def test_allauth_account_management_pages_wear_the_site_look(reader_client, url):
    response = reader_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="site-header"' in html and "page-account" in html
    assert "Menu:" not in html


def test_cognito_urls_answer_404_while_cognito_is_switched_off(client):
    for url in ("/accounts/amazon-cognito/login/", "/accounts/amazon-cognito/login/callback/?code=x&state=y"):
        assert client.get(url).status_code == 404
    assert client.post("/accounts/amazon-cognito/login/").status_code in (403, 404)


def test_confirming_in_another_browser_logs_in_once_and_lands_on_the_dashboard(client, mailoutbox):
    from django.test import Client

    client.post("/accounts/signup/", signup_data())
    link = link_in(mailoutbox[-1], r"http://testserver/accounts/confirm-email/[^/\s]+/")

    phone = Client()  # the reader opens the email on another device: no sign-up session there
    response = phone.post(link)
    assert response.status_code == 302 and response["Location"] == "/portal/"
    assert phone.get("/portal/").status_code == 200
    assert User.objects.get().subscription.status == "active"

    # The link logs in only while it confirms: once the address is confirmed, it no longer does.
    stranger = Client()
    assert stranger.post(link).status_code == 404  # allauth: a confirmed address has no pending link
    assert "has been used already" in stranger.get(link).content.decode()
    assert "_auth_user_id" not in stranger.session


def test_an_account_with_a_second_factor_is_not_logged_in_by_the_link(client, mailoutbox):
    from allauth.mfa.models import Authenticator
    from django.test import Client

    client.post("/accounts/signup/", signup_data())
    user = User.objects.get()
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "not used here"})
    link = link_in(mailoutbox[-1], r"http://testserver/accounts/confirm-email/[^/\s]+/")
    other = Client()
    response = other.post(link)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in other.session
    assert EmailAddress.objects.get(user=user).verified
