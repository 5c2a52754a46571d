"""A signed-in request loads the user with their subscription; sessions from before keep working."""

from importlib import import_module

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import views
from accounts.auth_backends import AuthenticationBackend
from accounts.models import Subscription
from accounts.tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def _session_signed_in_by(client, user, backend: str) -> str:
    """A session as `login()` leaves it when `backend` signed the user in; its key is the client's cookie."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = backend
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    return store.session_key


def _stored_backend(session_key: str) -> str:
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()[BACKEND_SESSION_KEY]


def test_the_dashboard_reads_the_subscription_with_the_user(reader_client, subscription):
    reader_client.get("/portal/")
    with CaptureQueriesContext(connection) as queries:
        response = reader_client.get("/portal/")
    assert response.status_code == 200 and subscription.get_sign_display() in response.content.decode()
    reads = [q["sql"] for q in queries.captured_queries if '"accounts_subscription"' in q["sql"]]
    assert len(reads) == 1 and 'FROM "accounts_user" LEFT OUTER JOIN "accounts_subscription"' in reads[0], reads


def test_a_reader_without_a_subscription_is_asked_for_preferences(reader_client):
    response = reader_client.get("/portal/")
    assert response.status_code == 302 and response["Location"] == "/portal/preferences/"


@pytest.mark.parametrize(
    ("earlier", "ours"),
    [
        ("django.contrib.auth.backends.ModelBackend", "accounts.auth_backends.ModelBackend"),
        ("allauth.account.auth_backends.AuthenticationBackend", "accounts.auth_backends.AuthenticationBackend"),
    ],
)
def test_a_session_from_before_stays_signed_in_and_moves_to_our_backend(client, subscription, earlier, ours):
    key = _session_signed_in_by(client, subscription.user, earlier)
    response = client.get("/portal/")
    assert response.status_code == 200 and subscription.get_sign_display() in response.content.decode()
    assert _stored_backend(key) == ours and ours in settings.AUTHENTICATION_BACKENDS
    assert client.get("/portal/").status_code == 200


def test_a_session_naming_a_backend_not_listed_is_signed_out(client, subscription):
    _session_signed_in_by(client, subscription.user, "django.contrib.auth.backends.RemoteUserBackend")
    response = client.get("/portal/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_deactivated_reader_is_signed_out(reader_client, subscription):
    subscription.user.is_active = False
    subscription.user.save()
    response = reader_client.get("/portal/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_preferences_sent_twice_at_once_land_on_the_one_subscription(reader_client, reader, monkeypatch):
    """The second submit read no subscription when it began; the first created it meanwhile."""
    validate = views.PreferencesForm.is_valid

    def created_meanwhile(form):
        SubscriptionFactory(user=reader, sign="aries")
        return validate(form)

    monkeypatch.setattr(views.PreferencesForm, "is_valid", created_meanwhile)
    response = reader_client.post(
        "/portal/preferences/",
        {"sign": "leo", "birth_date": "", "time_zone": "Europe/Paris", "delivery_time": "07:30", "topics": ["love"]},
    )
    assert response.status_code == 302 and response["Location"] == "/portal/"
    subscription = Subscription.objects.get(user=reader)
    assert subscription.sign == "leo" and str(subscription.time_zone) == "Europe/Paris"


def test_the_async_path_loads_the_subscription_too(subscription, django_assert_num_queries):
    user = async_to_sync(AuthenticationBackend().aget_user)(subscription.user.pk)
    with django_assert_num_queries(0):
        assert user.subscription.pk == subscription.pk
