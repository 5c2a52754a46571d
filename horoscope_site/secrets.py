"""Where secrets come from: AWS Secrets Manager in production, the environment in development.

One JSON secret, named by APP_SECRETS_ID, holds every key (DJANGO_SECRET_KEY,
OPENAI_API_KEY, PINECONE_API_KEY, COGNITO_CLIENT_SECRET and any other). A
non-empty environment variable of the same name always wins.

- `load_secrets()` runs once, from settings: it returns the startup snapshot
  (`settings.SECRETS`) and stops startup with a ConfigError naming the missing
  key, never its value.
- `get_secret(name)` is for keys that may be rotated while the process runs
  (OpenAI, Pinecone): adapters call it when they build a client. It reads
  through aws-secretsmanager-caching's SecretCache, which asks Secrets Manager
  again after SECRETS_REFRESH_INTERVAL seconds (DescribeSecret, then
  GetSecretValue for a new version only).

Values are never logged and never put into an exception message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from horoscope_site.config import ConfigError

if TYPE_CHECKING:
    import environ

logger = logging.getLogger(__name__)

SECRET_NAMES = (
    "DJANGO_SECRET_KEY",
    "DJANGO_SECRET_KEY_FALLBACKS",
    "OPENAI_API_KEY",
    "PINECONE_API_KEY",
    "COGNITO_CLIENT_SECRET",
)
REQUIRED_IN_PRODUCTION = ("DJANGO_SECRET_KEY",)
DEFAULT_REFRESH_INTERVAL_S = 300
# Values this short are not worth masking in error pages (they would mask ordinary words).
MIN_MASKED_LENGTH = 8


class SecretsError(Exception):
    """The secret store could not be read. The message names the store, never a value."""


class SecretStore(Protocol):
    """A source of secret values by name."""

    def read(self) -> dict[str, str]:
        """Every secret the store holds; raises SecretsError when it cannot be read."""
        ...


class SecretsManagerStore:
    """One JSON secret in AWS Secrets Manager, read through SecretCache.

    The boto3 client is built on first use, and again in a forked child (a Celery
    prefork worker must not share its parent's connection pool or cache lock).
    """

    def __init__(self, secret_id: str, refresh_interval: int = DEFAULT_REFRESH_INTERVAL_S) -> None:
        self.secret_id = secret_id
        self.refresh_interval = refresh_interval
        self._cache = None
        self._pid = 0
        self._lock = threading.Lock()
        self._last_text: str | None = None
        self._last_values: dict[str, str] = {}

    def _secret_cache(self):
        with self._lock:
            if self._cache is None or self._pid != os.getpid():
                self._cache = self._build_cache()
                self._pid = os.getpid()
            return self._cache

    def _build_cache(self):
        import boto3
        from aws_secretsmanager_caching import SecretCache, SecretCacheConfig
        from botocore.config import Config

        # Short timeouts and few retries: an unreachable store must fail startup in
        # seconds, not hang it. The endpoint comes from AWS_ENDPOINT_URL_SECRETS_MANAGER.
        client = boto3.session.Session().client(
            "secretsmanager",
            region_name=self._region(),
            config=Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 2}),
        )
        return SecretCache(config=SecretCacheConfig(secret_refresh_interval=self.refresh_interval), client=client)

    def _region(self) -> str | None:
        if self.secret_id.startswith("arn:"):
            return self.secret_id.split(":")[3] or None
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None

    def read(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            text = self._secret_cache().get_secret_string(self.secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretsError(f"Secrets Manager refused to read {self.secret_id!r} ({code})") from None
        except BotoCoreError as exc:
            raise SecretsError(f"cannot reach Secrets Manager for {self.secret_id!r} ({type(exc).__name__})") from None
        if text is None:
            raise SecretsError(f"secret {self.secret_id!r} has no current string value")
        with self._lock:
            if text != self._last_text:
                self._last_values = self._parse(text)
                self._last_text = text
            return dict(self._last_values)

    def _parse(self, text: str) -> dict[str, str]:
        try:
            payload = json.loads(text)
        except ValueError:
            raise SecretsError(f"secret {self.secret_id!r} is not a JSON object") from None
        if not isinstance(payload, dict):
            raise SecretsError(f"secret {self.secret_id!r} is not a JSON object")
        bad = sorted(str(key) for key, value in payload.items() if not isinstance(value, str))
        if bad:
            raise SecretsError(f"secret {self.secret_id!r} has non-string values for: {', '.join(bad)}")
        return payload

    def known_values(self) -> set[str]:
        """Values already read (for masking in error reports); never calls AWS."""
        return set(self._last_values.values())


class _State:
    """What load_secrets() found, for get_secret() and the error-report filter."""

    def __init__(self) -> None:
        self.loaded = False
        self.store: SecretsManagerStore | None = None
        self.snapshot: dict[str, str] = {}
        self.reported_error: str | None = None


_state = _State()


def _from_environment(environ: Mapping[str, str], names: set[str]) -> dict[str, str]:
    # Raw os.environ values: django-environ would expand a leading "$" in a key.
    return {name: environ[name] for name in names if environ.get(name)}


def load_secrets(env: environ.Env, *, production: bool) -> dict[str, str]:
    """Return the startup snapshot of every secret, environment first.

    Production: an unreadable APP_SECRETS_ID or a missing required key raises
    ConfigError. Development: an unreadable store logs a warning and the
    environment alone is used.
    """
    environ_ = env.ENVIRON
    secret_id = environ_.get("APP_SECRETS_ID", "").strip()
    try:
        refresh_interval = int(environ_.get("SECRETS_REFRESH_INTERVAL") or DEFAULT_REFRESH_INTERVAL_S)
    except ValueError:
        raise ConfigError("SECRETS_REFRESH_INTERVAL must be a whole number of seconds") from None
    if refresh_interval < 0:
        raise ConfigError("SECRETS_REFRESH_INTERVAL must be a whole number of seconds")

    values = dict.fromkeys(SECRET_NAMES, "")
    reported_error = None
    store = SecretsManagerStore(secret_id, refresh_interval) if secret_id else None
    if store is not None:
        try:
            values.update(store.read())
        except SecretsError as exc:
            if production:
                raise ConfigError(f"{exc}; APP_SECRETS_ID must name a readable JSON secret in production") from None
            logger.warning("%s; using environment variables only (development)", exc)
            reported_error = str(exc)
    values.update(_from_environment(environ_, set(values)))

    if production:
        for name in REQUIRED_IN_PRODUCTION:
            if not values.get(name):
                where = f"add it to the secret {secret_id!r} (APP_SECRETS_ID)" if secret_id else "set APP_SECRETS_ID"
                raise ConfigError(
                    f"{name} is required when DJANGO_ENV=production: {where} or set it in the environment"
                )

    _state.loaded = True
    _state.store = store
    _state.snapshot = dict(values)
    _state.reported_error = reported_error
    return values


def _ensure_loaded() -> None:
    if not _state.loaded:
        from django.conf import settings

        settings.SECRETS  # noqa: B018 - importing settings runs load_secrets()


def get_secret(name: str, default: str = "") -> str:
    """The current value of one secret: environment, then Secrets Manager (cached), then startup.

    Call this when building a client, not once at import, so a rotated key is
    picked up within SECRETS_REFRESH_INTERVAL seconds without a restart.
    """
    value = os.environ.get(name)
    if value:
        return value
    _ensure_loaded()
    store = _state.store
    if store is not None:
        try:
            current = store.read()
        except SecretsError as exc:
            # Keep running on the startup value; say so once per distinct problem.
            if str(exc) != _state.reported_error:
                _state.reported_error = str(exc)
                logger.warning("%s; using the value of %s read at startup", exc, name)
        else:
            _state.reported_error = None
            return current.get(name) or default
    return _state.snapshot.get(name) or default


def secret_values() -> set[str]:
    """Every secret value this process knows, for masking in error reports."""
    values = set(_state.snapshot.values())
    if _state.store is not None:
        values |= _state.store.known_values()
    # A list of keys in one value (DJANGO_SECRET_KEY_FALLBACKS): each key is a secret on its own.
    values |= {part for value in values for part in value.split()}
    return {value for value in values if len(value) >= MIN_MASKED_LENGTH}


MASK = "********************"  # as Django's SafeExceptionReporterFilter writes it


def mask_secret_values(text: str, values: set[str] | None = None) -> str:
    """`text` with every known secret value replaced by stars."""
    for value in secret_values() if values is None else values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class SecretsLogFilter(logging.Filter):
    """Masks secret values in log records (message, exception text, stack) before any handler writes them.

    Our code never logs a value; this catches a library or an exception message that does.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        values = secret_values()
        if not values:
            return True
        message = record.getMessage()
        masked = mask_secret_values(message, values)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secret_values(record.exc_text, values)
        if record.stack_info:
            record.stack_info = mask_secret_values(record.stack_info, values)
        return True
