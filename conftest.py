"""Test wiring: every test database is a throwaway PostgreSQL server started here."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from hypothesis import settings as hypothesis_settings
from pytest_redis import factories

from devtools.servers import PostgresServer

# Tests must never reach a real AWS endpoint, whatever the machine's environment says.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# `make test` is what CI runs: property tests draw the same examples every run, so a landing never
# hangs on a lucky draw. HYPOTHESIS_PROFILE=explore draws new ones, to look for new failures.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

redis_proc = factories.redis_proc(executable="/usr/bin/redis-server", timeout=30)

ARTIFACTS_DIR = Path(__file__).resolve().parent / "test-artifacts"


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_server):
    """Point Django at the throwaway PostgreSQL server before the test database is made."""
    settings.DATABASES["default"] = postgres_server.django_settings()
    connections.close_all()
    # The handler caches the DATABASES it first saw; make it read them again.
    connections.__dict__.pop("settings", None)
    connections._settings = None
    # django.setup() already built a connection object from the old settings (model classes ask
    # it for max_name_length): drop it, or this thread would keep using SQLite in memory.
    del connections["default"]


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty Django cache: a page cached by an earlier test (whose rows
    were rolled back without a commit to say so) is not served to the next."""
    from django.core.cache import cache

    from forecasts import reading_cache

    cache.clear()
    reading_cache.forget_held()


@pytest.fixture(autouse=True)
def outbox_in_tmp(settings, tmp_path):
    """Each test that uses the outbox backend gets its own folder."""
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def chromium():
    """One headless Debian Chromium for the session's browser tests."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch_chromium

    # Playwright's sync API keeps an event loop running in this thread, which makes Django
    # refuse ORM calls from the test body; the test itself is still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
