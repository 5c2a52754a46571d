"""Small helpers that turn environment values into settings, with one-line errors."""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

DATABASE_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql"}
# Where `make run` serves unless told otherwise, and the file in VAR_DIR where it records the
# address it serves on (devtools/run.py).
DEVELOPMENT_SITE_URL = "http://127.0.0.1:8000"
SITE_URL_RECORD = "site-url"


class ConfigError(ImproperlyConfigured):
    """Bad or missing configuration; entry points print it as one line and exit."""


def require(condition: object, message: str) -> None:
    """Stop startup with `message` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def development_site_url(var_dir: Path, django_env: str) -> str:
    """SITE_URL when none is set: in development the address `make run` recorded, else its default.

    Never derived from PORT: `make run` gives each process its own PORT (web 8000, worker 8100,
    beat 8200), so links written by the worker would lead nowhere. Tests get the fixed default.
    """
    if django_env == "development":
        try:
            recorded = (var_dir / SITE_URL_RECORD).read_text(encoding="utf-8").strip()
        except OSError:
            recorded = ""
        if recorded:
            return recorded
    return DEVELOPMENT_SITE_URL


def database_from_url(url: str) -> dict:
    """Parse DATABASE_URL, refusing schemes and shapes we do not support."""
    scheme = urlsplit(url).scheme
    if scheme not in DATABASE_SCHEMES:
        raise ConfigError(
            f"DATABASE_URL has an unsupported scheme {scheme or '(none)'!r}: "
            "use postgres://user:password@host:5432/name or sqlite:////absolute/path.sqlite3"
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for malformed URLs
        raise ConfigError(f"DATABASE_URL cannot be parsed: {exc}") from None
    if not config.get("NAME"):
        raise ConfigError("DATABASE_URL names no database")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # WAL and IMMEDIATE transactions let the web server, worker and beat share
        # one SQLite file without "database is locked" errors.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        config.setdefault("CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    return config


def celery_broker_options(broker_url: str, broker_dir: Path, env: environ.Env) -> dict:
    """Transport options for the configured broker.

    The file-system broker needs its folders; Redis and SQS need a visibility
    timeout short enough that a task held by a killed worker comes back soon.
    """
    scheme = urlsplit(broker_url).scheme
    if scheme == "filesystem":
        folders = {name: broker_dir / name for name in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        }
    if scheme in {"redis", "rediss", "sqs"}:
        options = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900)}
        if scheme == "sqs":
            options["region"] = env.str("AWS_REGION", default="us-east-1")
            options["queue_name_prefix"] = env.str("CELERY_SQS_QUEUE_PREFIX", default="horoscope-")
        return options
    if scheme in {"memory", "sqla+sqlite", "sqla+postgresql"}:
        return {}
    raise ConfigError(
        f"CELERY_BROKER_URL has an unsupported scheme {scheme or '(none)'!r}: "
        "use filesystem://, redis://host:6379/0 or sqs://"
    )
