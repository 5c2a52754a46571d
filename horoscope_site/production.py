"""What production refuses to start on.

Each of these works on one machine and fails quietly in production: a local email backend keeps
every email on the web server's disk, SQLite and the file-system broker are not shared between
machines, a per-process cache gives each worker its own login rate limits, and a short or
well-known secret key lets anyone forge sessions and links. The check runs when settings load,
so `runserver`, gunicorn, the Celery worker and beat all stop, not only `manage.py check`.
"""

from urllib.parse import urlsplit

DEVELOPMENT_SECRET_KEY = "insecure-development-key-never-used-in-production"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 50  # Django's own deploy check asks for 50 characters, 5 of them distinct
MIN_SECRET_KEY_DISTINCT = 5

LOCAL_EMAIL_BACKENDS = {
    "forecasts.sending.outbox.OutboxEmailBackend": "the local outbox",
    "django.core.mail.backends.console.EmailBackend": "the console",
    "django.core.mail.backends.filebased.EmailBackend": "files on this machine",
    "django.core.mail.backends.locmem.EmailBackend": "memory",
    "django.core.mail.backends.dummy.EmailBackend": "nowhere",
}
PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}
LOCAL_BROKER_SCHEMES = {"filesystem", "memory"}
SQLITE_ENGINE = "django.db.backends.sqlite3"


def production_problems(
    *,
    secret_key: str,
    email_backend: str,
    database_engine: str,
    broker_url: str,
    cache_backend: str,
    allow_sqlite: bool,
) -> list[str]:
    """One line per setting that is unsafe in production; empty when all is well."""
    problems = []
    if email_backend in LOCAL_EMAIL_BACKENDS:
        problems.append(
            f"EMAIL_BACKEND sends mail to {LOCAL_EMAIL_BACKENDS[email_backend]}, not to readers: "
            "set EMAIL_BACKEND=django_ses.SESBackend when DJANGO_ENV=production"
        )
    if database_engine == SQLITE_ENGINE and not allow_sqlite:
        problems.append(
            "DATABASE_URL is SQLite, which one machine alone can use: set a postgres:// URL, or "
            "ALLOW_SQLITE_IN_PRODUCTION=1 for a single-machine site (docs/operations.md)"
        )
    if urlsplit(broker_url).scheme in LOCAL_BROKER_SCHEMES:
        problems.append(
            "CELERY_BROKER_URL is a broker on this machine only: set redis://host:6379/0 or sqs:// "
            "when DJANGO_ENV=production"
        )
    if cache_backend in PER_PROCESS_CACHES:
        problems.append(
            "REDIS_URL is required when DJANGO_ENV=production: without a shared cache each process "
            "keeps its own login rate limits"
        )
    if secret_key == DEVELOPMENT_SECRET_KEY or secret_key.startswith("django-insecure"):
        problems.append("DJANGO_SECRET_KEY is the development key: generate a new random one for production")
    elif len(secret_key) < MIN_SECRET_KEY_LENGTH or len(set(secret_key)) < MIN_SECRET_KEY_DISTINCT:
        problems.append(
            f"DJANGO_SECRET_KEY is too short or too plain: use at least {MIN_SECRET_KEY_LENGTH} random characters"
        )
    return problems
