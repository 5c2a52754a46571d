"""Start the npm `oidc-provider` stand-in for the Cognito hosted UI (server.js) on loopback."""

import secrets
import shutil
from pathlib import Path

import requests

from devtools.servers import ManagedProcess, base_child_env, free_port, wait_for

OIDC_DIR = Path(__file__).resolve().parent


class OidcStandIn:
    """An OAuth2/OIDC server at http://127.0.0.1:<port> serving /oauth2/authorize, /token, /userInfo."""

    def __init__(self, redirect_uris: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = f"test-client-{secrets.token_hex(4)}"
        self.client_secret = secrets.token_urlsafe(32)  # generated per run, never stored
        self.redirect_uris = redirect_uris
        self.log_path = log_path
        self.process: ManagedProcess | None = None

    def start(self) -> "OidcStandIn":
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed: run `make test-deps` (it installs nodejs)")
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("tests/oidc/node_modules is missing: run `make test-deps` (npm ci in tests/oidc)")
        env = base_child_env(
            OIDC_PORT=str(self.port),
            OIDC_CLIENT_ID=self.client_id,
            OIDC_CLIENT_SECRET=self.client_secret,
            OIDC_REDIRECT_URI=",".join(self.redirect_uris),
            NODE_ENV="test",
        )
        self.process = ManagedProcess([node, str(OIDC_DIR / "server.js")], env, self.log_path).start()
        wait_for(self._ready, timeout=30, what=f"the OIDC stand-in on {self.url} (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process and self.process.process and self.process.process.poll() is not None:
            raise RuntimeError(f"the OIDC stand-in exited: {self.process.log()[-2000:]}")
        try:
            return requests.get(f"{self.url}/.well-known/openid-configuration", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def provider_settings(self) -> dict:
        """SOCIALACCOUNT_PROVIDERS pointing allauth's amazon_cognito provider at this server."""
        return {
            "amazon_cognito": {
                "DOMAIN": self.url,
                "EMAIL_AUTHENTICATION": True,
                "VERIFIED_EMAIL": False,
                "APPS": [{"client_id": self.client_id, "secret": self.client_secret, "key": ""}],
                "OAUTH_PKCE_ENABLED": True,
            }
        }
