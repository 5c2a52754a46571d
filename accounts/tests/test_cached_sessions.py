"""Sessions as production keeps them with REDIS_URL: read from Redis, written through to the database
(cached_db). Logging out, and deleting the account, end them in both places: on every device."""

import pytest
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client

from accounts.tests.factories import PASSWORD, SubscriptionFactory, UserFactory


@pytest.fixture
def redis_sessions(settings, redis_proc):
    settings.CACHES = {
        "default": {
            "BACKEND": "horoscope_site.redis_cache.SharedClientRedisCache",
            "LOCATION": f"redis://{redis_proc.host}:{redis_proc.port}/6",
        }
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    cache.clear()
    yield
    cache.clear()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get("/portal/").status_code == 200
    return client


def in_redis(client: Client) -> bool:
    return cache.get(KEY_PREFIX + client.cookies["sessionid"].value) is not None


def in_database(client: Client) -> bool:
    return Session.objects.filter(session_key=client.cookies["sessionid"].value).exists()


@pytest.mark.django_db
def test_a_session_is_read_from_redis_and_logging_out_ends_it_everywhere(redis_sessions):
    reader = SubscriptionFactory().user
    laptop = logged_in(reader)
    assert in_redis(laptop) and in_database(laptop)

    Session.objects.all().update(session_data="")  # a page now answers from Redis alone
    assert laptop.get("/portal/").status_code == 200

    assert laptop.post("/accounts/logout/").status_code == 302
    assert laptop.get("/portal/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_deleting_the_account_ends_every_cached_session_of_the_person(redis_sessions):
    reader = SubscriptionFactory(user=UserFactory(email="two.devices@example.test")).user
    bystander = logged_in(SubscriptionFactory().user)
    laptop, phone = logged_in(reader), logged_in(reader)
    keys = [device.cookies["sessionid"].value for device in (laptop, phone)]

    assert laptop.post("/portal/account/delete/", {"password": PASSWORD}).status_code == 302

    for key in keys:
        assert cache.get(KEY_PREFIX + key) is None and not Session.objects.filter(session_key=key).exists()
    assert phone.get("/portal/")["Location"].startswith("/accounts/login/")
    assert bystander.get("/portal/").status_code == 200 and in_redis(bystander)


def test_the_redis_cache_shares_one_client_per_pool(redis_sessions):
    backend = cache._cache
    assert backend.get_client() is backend.get_client() and backend.get_client(write=True) is backend.get_client()
    cache.set("counter", 1)
    assert cache.incr("counter") == 2 and cache.get_many(["counter", "absent"]) == {"counter": 2}
