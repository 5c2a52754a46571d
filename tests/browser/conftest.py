"""Browser tests: Debian's Chromium (Playwright) against pytest-django's live server.

Each test opens its pages through `browser`, which keeps every console message Chromium logs
for the site's own pages, so a test can check that the Content-Security-Policy refused nothing.
Full-page screenshots go to test-artifacts/browser/.
"""

import re
from pathlib import Path

import pytest
from django.core.cache import cache

from tests.support.browser import DESKTOP

OFFLINE_COMPOSER = "forecasts.writing.generators.offline.OfflineComposer"
CSP_MESSAGE = re.compile(r"Content Security Policy", re.I)


class BrowserSession:
    """Pages in their own browser contexts (cookie jars), with the console kept per page."""

    def __init__(self, chromium, site_url: str, shots_dir: Path) -> None:
        self.chromium = chromium
        self.site_url = site_url
        self.shots_dir = shots_dir
        self.contexts = []
        self.console: list[tuple[str, str, str]] = []  # (page url, message type, text)

    def page(self, viewport: dict = DESKTOP, **context_options):
        """A new page in a fresh context (no cookies), e.g. timezone_id="Asia/Tokyo"."""
        context = self.chromium.new_context(viewport=viewport, **context_options)
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: self.console.append((page.url, message.type, message.text)))
        return page

    def screenshot(self, page, name: str) -> Path:
        path = self.shots_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def csp_violations(self) -> list[str]:
        """Console messages about the CSP refusing something on the site's own pages."""
        return [
            f"{url}: {text}"
            for url, _kind, text in self.console
            if CSP_MESSAGE.search(text) and (not url or url.startswith(self.site_url))
        ]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def site(settings, live_server):
    """The live server as a person meets it in development: local outbox, offline composer."""
    settings.EMAIL_BACKEND = "forecasts.sending.outbox.OutboxEmailBackend"
    settings.DEBUG = True  # the outbox pages are open to anyone on the machine in development only
    settings.SITE_URL = live_server.url  # links in emails lead back to this server
    settings.FORECAST_GENERATOR = OFFLINE_COMPOSER
    # Hashing is not what these tests check; the production hasher costs ~100 ms a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # allauth's rate limits live in the cache
    yield live_server
    cache.clear()


@pytest.fixture
def browser(chromium, site, artifacts_dir):
    shots_dir = artifacts_dir / "browser"
    shots_dir.mkdir(exist_ok=True)
    session = BrowserSession(chromium, site.url, shots_dir)
    yield session
    session.close()
