"""Unsubscribing from an email without logging in (RFC 8058 one-click) and the opt-in link."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core import signing
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts import services
from accounts.models import Subscription
from accounts.tests.factories import SubscriptionFactory, UserFactory
from accounts.unsubscribe import (
    UnsubscribeLinks,
    preferences_url,
    subscription_id_from_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_unsubscribe_url_is_absolute_from_site_url(subscription, settings):
    settings.SITE_URL = "https://horoscope.example.com"
    url = unsubscribe_url(subscription)
    assert url.startswith("https://horoscope.example.com/unsubscribe/") and url.endswith("/")
    assert preferences_url() == "https://horoscope.example.com/portal/preferences/"


@time_machine.travel("2026-03-01 06:00:00+00:00", tick=False)
def test_the_sends_links_are_the_same_urls_reversed_once(settings):
    settings.SITE_URL = "https://horoscope.example.com"
    readers = [SubscriptionFactory() for _ in range(3)]
    links = UnsubscribeLinks()
    for reader in readers:
        url = links.url(reader)
        assert url == unsubscribe_url(reader)  # the same second: the same token
        token = path_of(url).split("/")[-2]
        assert subscription_id_from_unsubscribe_token(token) == reader.pk
        response = Client().post(
            path_of(url), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 200
    assert set(Subscription.objects.values_list("status", flat=True)) == {Subscription.Status.UNSUBSCRIBED}


def test_the_sends_tokens_are_signing_dumps_own_in_every_second(settings):
    settings.SECRET_KEY = "another-secret-" + "x" * 40
    links = UnsubscribeLinks()
    for instant in (1_700_000_000, 1_700_000_000.9, 1_700_000_001, 2_000_000_000):
        with time_machine.travel(instant, tick=False):
            for pk in (1, 7, 1234, 2**31 + 5, 10**15):
                reader = Subscription(pk=pk)
                assert links.url(reader) == unsubscribe_url(reader), (instant, pk)
    settings.SECRET_KEY = "rotated-" + "y" * 40  # a new batch signs with the new key
    with time_machine.travel(1_700_000_000, tick=False):
        assert UnsubscribeLinks().url(Subscription(pk=3)) == unsubscribe_url(Subscription(pk=3))
        assert links.url(Subscription(pk=3)) != unsubscribe_url(Subscription(pk=3))


def test_get_shows_a_confirmation_and_changes_nothing(subscription):
    before = Subscription.objects.get(pk=subscription.pk)
    response = Client().get(path_of(unsubscribe_url(subscription)))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Unsubscribe?" in html and subscription.user.email in html
    assert '<form method="post"' in html
    after = Subscription.objects.get(pk=subscription.pk)
    assert (after.status, after.next_send_at, after.updated_at) == (
        before.status,
        before.next_send_at,
        before.updated_at,
    )


def test_one_click_post_without_cookies_or_csrf_unsubscribes_at_once(subscription):
    mail_provider = Client(enforce_csrf_checks=True)  # no session, no CSRF cookie or token
    response = mail_provider.post(
        path_of(unsubscribe_url(subscription)),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert subscription.next_send_at is None
    assert "one-click" in subscription.status_reason
    # A second POST (providers retry) is just as fine.
    assert mail_provider.post(path_of(unsubscribe_url(subscription))).status_code == 200


def test_the_confirmation_pages_button_unsubscribes(subscription):
    browser = Client(enforce_csrf_checks=True)
    url = path_of(unsubscribe_url(subscription))
    html = browser.get(url).content.decode()
    action = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
    assert browser.post(action, {"List-Unsubscribe": "One-Click"}).status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED


@pytest.mark.parametrize(
    "forge",
    [
        lambda token, pk: token[:-1] + ("A" if token[-1] != "A" else "B"),  # tampered signature
        lambda token, pk: signing.dumps(pk + 1, salt="accounts.unsubscribe.v1")[:-2] + token[-2:],  # another id
        lambda token, pk: signing.dumps(pk),  # signed, but with the default salt
        lambda token, pk: signing.dumps(pk, salt="accounts.subscription-confirm.v1"),  # another purpose
        lambda token, pk: str(pk),
        lambda token, pk: "not-a-token",
    ],
)
def test_forged_or_tampered_tokens_answer_400_and_change_nothing(subscription, forge):
    other = SubscriptionFactory()
    token = forge(unsubscribe_token(subscription), subscription.pk)
    for method in ("get", "post"):
        response = getattr(Client(enforce_csrf_checks=True), method)(f"/unsubscribe/{token}/")
        assert response.status_code == 400
        assert "This link is not valid" in response.content.decode()
    assert set(Subscription.objects.values_list("status", flat=True)) == {"active"}
    assert other.pk != subscription.pk


@given(
    token=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=200
    )
)
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_tokens_never_answer_500(subscription, token):
    response = Client().post(f"/unsubscribe/{quote(token, safe='')}/")
    assert response.status_code in (400, 404)


def test_a_genuine_link_for_a_deleted_account_is_a_polite_200(subscription):
    url = path_of(unsubscribe_url(subscription))
    services.user_delete(subscription.user)
    response = Client().post(url)
    assert response.status_code == 200 and "We no longer hold this address" in response.content.decode()


def test_confirmation_link_activates_a_pending_subscription_and_verifies_the_address(mailoutbox):
    user = UserFactory(email="pending@example.test", verified=False)
    subscription = services.subscription_create(user=user, sign="aries", time_zone="Europe/Madrid")
    assert subscription.status == "pending"
    services.subscription_send_confirmation(subscription)

    [message] = mailoutbox
    assert message.to == ["pending@example.test"]
    assert message.subject == "Confirm your daily horoscope"
    html_body = message.alternatives[0][0]
    url = re.search(r"https?://[^/\s]+(/subscribe/confirm/[^/\s\"]+/)", message.body).group(1)
    assert url in html_body

    browser = Client()
    assert browser.get(url).status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == "pending"  # GET alone changes nothing

    response = browser.post(url)
    assert response.status_code == 200 and "You are subscribed" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.next_send_at is not None
    assert EmailAddress.objects.get(user=user).verified


def test_confirmation_links_expire_after_a_week_and_do_not_follow_a_changed_address(mailoutbox):
    user = UserFactory(email="late@example.test", verified=False)
    subscription = services.subscription_create(user=user, sign="aries")
    services.subscription_send_confirmation(subscription)
    url = re.search(r"(/subscribe/confirm/[^/\s]+/)", mailoutbox[0].body).group(1)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert Client().post(url).status_code == 400
    User = type(user)
    User.objects.filter(pk=user.pk).update(email="changed@example.test")
    assert Client().post(url).status_code == 400
    subscription.refresh_from_db()
    assert subscription.status == "pending"
