"""Export holds everything stored about the person; deletion leaves none of it."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.usersessions.models import UserSession
from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from accounts.models import Subscription, User
from accounts.tests.factories import PASSWORD, SubscriptionFactory, UserFactory
from forecasts.models import Delivery, Forecast
from tests.support.cognito import switch_on_cognito

pytestmark = pytest.mark.django_db

EMAIL = "private.person@example.test"


@pytest.fixture
def person(client):
    """A reader with a row in every table that can hold something about them."""
    user = UserFactory(email=EMAIL, first_name="Private", last_name="Person", is_staff=True)
    user.groups.add(Group.objects.create(name="Editors"))
    client.force_login(user)
    # allauth.usersessions records each login made through allauth (see test_signup_and_login).
    UserSession.objects.create(
        user=user, session_key=client.session.session_key, ip="203.0.113.9", user_agent="Firefox"
    )
    EmailAddress.objects.create(user=user, email="second.address@example.test", verified=False)
    subscription = SubscriptionFactory(
        user=user, sign="scorpio", birth_date=date(1980, 11, 1), birth_place="Valparaíso", time_zone="America/Santiago"
    )
    forecast = Forecast.objects.create(
        date=date(2025, 5, 1),
        sign="scorpio",
        status="approved",
        headline="Deep water",
        edited_by=user,
        edited_at=timezone.now(),
    )
    Delivery.objects.create(
        subscription=subscription,
        local_date=date(2025, 5, 1),
        forecast=forecast,
        due_at=datetime(2025, 5, 1, 10, tzinfo=UTC),
        status="delivered",
        ses_message_id="ses-123",
    )
    Delivery.objects.create(
        subscription=subscription,
        local_date=date(2025, 5, 2),
        due_at=datetime(2025, 5, 2, 10, tzinfo=UTC),
        status="bounced",
        error="mailbox full",
    )
    app = SocialApp.objects.create(provider="amazon_cognito", name="Cognito", client_id="id", secret="generated")
    account = SocialAccount.objects.create(
        user=user, provider="amazon_cognito", uid="cognito-sub-42", extra_data={"email": EMAIL, "given_name": "Private"}
    )
    SocialToken.objects.create(app=app, account=account, token="access-token-value", token_secret="refresh-value")
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "totp-seed-value"})
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(Forecast),
        object_id=str(forecast.pk),
        object_repr=str(forecast),
        action_flag=ADDITION,
    )
    admin = UserFactory(email="admin@example.test", is_staff=True)
    LogEntry.objects.create(
        user=admin,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(user.pk),
        object_repr=EMAIL,
        action_flag=ADDITION,
    )
    return user


def columns_referring_to_users() -> list[tuple[type[models.Model], models.Field]]:
    """Every (model, column) in the project that points at a User, including many-to-many tables."""
    return [
        (model, field)
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is User
    ]


def test_every_table_that_refers_to_a_user_is_known_here():
    """A new model pointing at User must be added to the export and to this test."""
    assert {f"{model._meta.label}.{field.name}" for model, field in columns_referring_to_users()} == {
        "accounts.Subscription.user",
        "accounts.User_groups.user",
        "accounts.User_user_permissions.user",
        "account.EmailAddress.user",
        "socialaccount.SocialAccount.user",
        "mfa.Authenticator.user",
        "usersessions.UserSession.user",
        "admin.LogEntry.user",
        "forecasts.Forecast.edited_by",  # the forecast is not theirs; the link is cleared on deletion
    }


def test_export_contains_everything_stored_about_the_person(client, person):
    response = client.get("/portal/account/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="daily-horoscope-data-')
    data = json.loads(response.content)

    for field in User._meta.concrete_fields:
        if field.name != "password":
            assert field.attname in data["user"]
    assert data["user"]["email"] == EMAIL and data["user"]["has_password"] is True
    assert data["user"]["groups"] == ["Editors"]
    assert "password" not in data["user"] and "pbkdf2" not in response.content.decode()

    subscription = data["subscription"]
    for field in Subscription._meta.concrete_fields:
        assert field.attname in subscription or field.name == "user"
    assert subscription["birth_place"] == "Valparaíso" and subscription["time_zone"] == "America/Santiago"

    deliveries = sorted(data["deliveries"], key=lambda d: d["local_date"])
    assert [(d["local_date"], d["status"]) for d in deliveries] == [
        ("2025-05-01", "delivered"),
        ("2025-05-02", "bounced"),
    ]
    assert deliveries[0]["ses_message_id"] == "ses-123" and deliveries[0]["forecast"]["headline"] == "Deep water"
    assert deliveries[1]["error"] == "mailbox full"
    for field in Delivery._meta.concrete_fields:
        assert field.attname in deliveries[0] or field.name == "subscription"

    assert {(a["email"], a["verified"]) for a in data["email_addresses"]} == {
        (EMAIL, True),
        ("second.address@example.test", False),
    }
    [social] = data["social_accounts"]
    assert (social["provider"], social["uid"]) == ("amazon_cognito", "cognito-sub-42")
    assert social["extra_data"]["given_name"] == "Private"
    assert data["login_sessions"]["count"] == 1
    assert data["login_sessions"]["sessions"][0]["ip"]
    assert [a["type"] for a in data["two_factor_authenticators"]] == ["totp"]
    assert len(data["admin_actions"]) == 1
    # Credentials are not personal data to hand out: no tokens, seeds or session keys.
    text = response.content.decode()
    for secret in ("access-token-value", "refresh-value", "totp-seed-value", client.session.session_key):
        assert secret not in text


def test_deletion_leaves_nothing_about_the_person(client, person):
    user_id = person.pk
    subscription_id = person.subscription.pk
    session_key = client.session.session_key
    response = client.post("/portal/account/delete/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"

    assert not User.objects.filter(pk=user_id).exists()
    for model, field in columns_referring_to_users():
        assert not model._base_manager.filter(**{field.attname: user_id}).exists(), (model, field)
    assert not Delivery.objects.filter(subscription_id=subscription_id).exists()
    assert not SocialToken.objects.exists()
    assert not LogEntry.objects.filter(object_repr__icontains=EMAIL).exists()
    assert Forecast.objects.get().edited_by_id is None  # the forecast stays; who edited it is gone

    # No text column anywhere still holds the address.
    for model in apps.get_models():
        text_fields = [
            f.name for f in model._meta.concrete_fields if isinstance(f, (models.CharField, models.TextField))
        ]
        for name in text_fields:
            assert not model._default_manager.filter(**{f"{name}__icontains": "private.person"}).exists(), (model, name)
            assert not model._default_manager.filter(**{f"{name}__icontains": "second.address"}).exists(), (model, name)

    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=session_key).exists()
    assert client.get("/portal/").status_code == 302  # logged out


def test_deletion_needs_the_password(client, person):
    response = client.post("/portal/account/delete/", {"password": "not it"})
    assert response.status_code == 200
    assert "That is not your password." in response.content.decode()
    assert User.objects.filter(pk=person.pk).exists()


def test_an_account_without_password_needs_a_fresh_login_to_delete(client, settings):
    switch_on_cognito(settings, "https://x.auth.example.test")
    user = UserFactory(email="cognito.only@example.test")
    user.set_unusable_password()
    user.save()
    SocialAccount.objects.create(user=user, provider="amazon_cognito", uid="sub-1")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.force_login(user)
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        page = client.get("/portal/account/delete/").content.decode()
        assert "Sign in again with Cognito" in page and 'name="password"' not in page
        assert client.post("/portal/account/delete/").status_code == 200
        assert User.objects.filter(pk=user.pk).exists()
    with time_machine.travel(start + timedelta(minutes=11), tick=False):
        client.force_login(user)  # what a fresh Cognito login does
        response = client.post("/portal/account/delete/")
    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
