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
from django.contrib.sessions.models import Session
from django.db import models
from django.test import Client
from django.utils import timezone

from accounts.models import Subscription, User
from accounts.tests.factories import PASSWORD, SubscriptionFactory, UserFactory
from forecasts.models import Delivery, Forecast, SesEvent
from tests.support.cognito import switch_on_cognito

pytestmark = pytest.mark.django_db

EMAIL = "private.person@example.test"


@pytest.fixture
def person(client):
    """A reader with a row in every table that can hold something about them."""
    user = UserFactory(email=EMAIL, first_name="Private", last_name="Person", is_staff=True)
    user.groups.add(Group.objects.create(name="Editors"))
    client.force_login(user)
    # Every login is noted as a UserSession (allauth's, and Django's own: accounts.signals).
    noted = UserSession.objects.filter(user=user, session_key=client.session.session_key)
    assert noted.update(ip="203.0.113.9", user_agent="Firefox") == 1
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
    delivered = Delivery.objects.create(
        subscription=subscription,
        local_date=date(2025, 5, 1),
        forecast=forecast,
        due_at=datetime(2025, 5, 1, 10, tzinfo=UTC),
        status="delivered",
        ses_message_id="ses-123",
    )
    # The email service's log of that email: its Send record, linked, and a Delivery event that
    # named only the message id.
    SesEvent.objects.create(
        sns_message_id="outbox-ses-123",
        sns_type="Outbox",
        event_type="Send",
        ses_message_id="ses-123",
        recipients=[EMAIL],
        delivery=delivered,
        payload={"mail": {"messageId": "ses-123", "destination": [EMAIL]}},
    )
    SesEvent.objects.create(
        sns_message_id="sns-delivery-1",
        sns_type="Notification",
        topic_arn="arn:aws:sns:eu-west-1:123456789012:ses-events",
        event_type="Delivery",
        ses_message_id="ses-123",
        recipients=[EMAIL],
        payload={"mail": {"messageId": "ses-123", "destination": [EMAIL]}, "delivery": {"recipients": [EMAIL]}},
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
    assert sorted((e["event_type"], e["ses_message_id"], e["recipients"]) for e in data["email_events"]) == [
        ("Delivery", "ses-123", [EMAIL]),
        ("Send", "ses-123", [EMAIL]),
    ]
    assert "123456789012" not in response.content.decode()  # the raw SNS message is ours, not theirs
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


def neighbour() -> User:
    """Another reader with a row in every table an export reads, each marked "neighbour"."""
    user = UserFactory(email="neighbour@example.test", first_name="Nosy", last_name="Neighbour")
    EmailAddress.objects.create(user=user, email="neighbour.second@example.test", verified=True)
    subscription = SubscriptionFactory(user=user, sign="scorpio", birth_place="Neighbourtown")
    for day, status in ((date(2025, 5, 1), "delivered"), (date(2025, 5, 3), "failed")):
        delivery = Delivery.objects.create(
            subscription=subscription,
            local_date=day,
            forecast=Forecast.objects.filter(date=day, sign="scorpio").first(),
            due_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
            status=status,
            ses_message_id=f"ses-neighbour-{day.day}",
            error="neighbour's mailbox" if status == "failed" else "",
        )
        SesEvent.objects.create(
            sns_message_id=f"outbox-{delivery.ses_message_id}",
            event_type="Send",
            ses_message_id=delivery.ses_message_id,
            recipients=[user.email],
            delivery=delivery,
            payload={"mail": {"destination": [user.email]}},
        )
    SocialAccount.objects.create(user=user, provider="amazon_cognito", uid="cognito-sub-neighbour")
    UserSession.objects.create(user=user, session_key="neighbour0session0key", ip="198.51.100.7", user_agent="Neighb")
    Authenticator.objects.create(user=user, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "neighbour"})
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(Subscription),
        object_id=str(subscription.pk),
        object_repr="neighbour's subscription",
        action_flag=ADDITION,
    )
    return user


def test_export_holds_nothing_of_another_reader(client, person):
    # Same sign, same forecast, same dates as the person: only whose rows they are tells them apart.
    neighbour()
    data = json.loads(client.get("/portal/account/export/").content)

    assert "neighbour" not in json.dumps(data).lower()
    assert [d["ses_message_id"] for d in sorted(data["deliveries"], key=lambda d: d["local_date"])] == ["ses-123", ""]
    assert len(data["email_addresses"]) == 2 and len(data["social_accounts"]) == 1
    assert data["login_sessions"]["count"] == 1 and len(data["two_factor_authenticators"]) == 1
    assert len(data["admin_actions"]) == 1


def test_deleting_the_account_ends_every_session_of_the_person_on_every_device(client):
    reader = UserFactory(email="many.devices@example.test")
    SubscriptionFactory(user=reader)
    bystander = SubscriptionFactory(user__email="bystander@example.test").user
    laptop, phone, other = Client(), Client(), Client()
    # The laptop logs in through the login form (allauth), the phone by Django's own login().
    response = laptop.post("/accounts/login/", {"login": reader.email, "password": PASSWORD}, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 302 and laptop.get("/portal/").status_code == 200
    phone.force_login(reader)
    client.force_login(reader)
    other.force_login(bystander)
    keys = {laptop.session.session_key, phone.session.session_key, client.session.session_key}
    assert len(keys) == 3 and set(UserSession.objects.filter(user=reader).values_list("session_key", flat=True)) == keys

    response = client.post("/portal/account/delete/", {"password": PASSWORD})
    assert response.status_code == 302

    assert not Session.objects.filter(session_key__in=keys).exists()
    for device in (laptop, phone, client):
        assert device.get("/portal/")["Location"].startswith("/accounts/login/")
    assert Session.objects.filter(session_key=other.session.session_key).exists()
    assert other.get("/portal/").status_code == 200  # someone else's session is untouched


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

    # No text or JSON column anywhere still holds the address (the email service's events did).
    for model in apps.get_models():
        text_fields = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, (models.CharField, models.TextField, models.JSONField))
        ]
        for name in text_fields:
            assert not model._default_manager.filter(**{f"{name}__icontains": "private.person"}).exists(), (model, name)
            assert not model._default_manager.filter(**{f"{name}__icontains": "second.address"}).exists(), (model, name)

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
