"""Cognito in tests: switched on as settings.py does it, and the OIDC stand-in for its hosted UI."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.oidc.stand_in import OidcStandIn

CALLBACK_PATH = "/accounts/amazon-cognito/login/callback/"


@contextmanager
def oidc_stand_in(site_url: str, log_path: Path) -> Iterator[OidcStandIn]:
    """The npm oidc-provider standing in for Cognito's hosted UI, sending logins back to `site_url`."""
    server = OidcStandIn([site_url + CALLBACK_PATH], log_path).start()
    try:
        yield server
    finally:
        server.stop()


def switch_on_cognito(settings, domain: str, providers: dict | None = None) -> None:
    """COGNITO_ENABLED, with allauth's amazon_cognito provider at `domain` (pytest-django `settings`).

    `providers` replaces the minimal SOCIALACCOUNT_PROVIDERS, e.g. an OidcStandIn's provider_settings().
    """
    settings.COGNITO_ENABLED = True
    settings.COGNITO_DOMAIN = domain
    settings.SOCIALACCOUNT_PROVIDERS = providers or {
        "amazon_cognito": {
            "DOMAIN": domain,
            "APPS": [{"client_id": "client-id", "secret": "generated-in-test", "key": ""}],
        }
    }
