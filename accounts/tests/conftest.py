import pytest
from django.core.cache import cache

from accounts.tests.factories import PASSWORD, SubscriptionFactory, UserFactory


@pytest.fixture(autouse=True)
def clean_cache():
    """allauth's rate limits live in the cache: every test starts with none used."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def reader(db):
    return UserFactory(email="reader@example.test")


@pytest.fixture
def subscription(reader):
    return SubscriptionFactory(user=reader)


@pytest.fixture
def reader_client(client, reader):
    client.force_login(reader)
    return client


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hashing is not what these tests check; the production hasher costs ~100 ms a user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
