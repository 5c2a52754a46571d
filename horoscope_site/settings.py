"""Settings, driven by environment variables.

Every variable has an embedded default for one machine (SQLite, a file-system
broker, a local email outbox), so `make run` needs no account anywhere. Set
`DJANGO_ENV=production` and the defaults that are unsafe in production are refused
instead. Every variable is listed with one line in `.env.example`.
"""

from email.utils import parseaddr
from pathlib import Path

import botocore.config
import environ

from horoscope_site.config import (
    ConfigError,
    celery_broker_options,
    database_from_url,
    development_site_url,
    require,
)
from horoscope_site.production import DEVELOPMENT_SECRET_KEY, production_problems
from horoscope_site.secrets import load_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(env_file)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production", "test"}:
    raise ConfigError(f"DJANGO_ENV must be development, production or test, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

# Secrets come from AWS Secrets Manager when APP_SECRETS_ID is set, else from the
# environment; the environment always wins (see horoscope_site/secrets.py).
SECRETS = load_secrets(env, production=PRODUCTION)

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ConfigError("DEBUG must be off when DJANGO_ENV=production")

SECRET_KEY = SECRETS.get("DJANGO_SECRET_KEY") or ""
# Earlier keys, whitespace-separated: signatures made with them (sessions, password resets, the
# never-expiring unsubscribe links in old emails) still verify after DJANGO_SECRET_KEY is rotated.
SECRET_KEY_FALLBACKS = (SECRETS.get("DJANGO_SECRET_KEY_FALLBACKS") or "").split()
if not SECRET_KEY:
    require(not PRODUCTION, "DJANGO_SECRET_KEY is required when DJANGO_ENV=production")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
require(not PRODUCTION or ALLOWED_HOSTS, "ALLOWED_HOSTS is required when DJANGO_ENV=production")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The absolute https URL the site is reached at; emails link to it. In development `make run`
# records the address it serves on, so web, worker, beat and commands run by hand all agree.
SITE_URL = env.str("SITE_URL", default="" if PRODUCTION else development_site_url(VAR_DIR, DJANGO_ENV))
require(
    not PRODUCTION or SITE_URL.startswith("https://"), "SITE_URL must be an https:// URL when DJANGO_ENV=production"
)
SITE_URL = SITE_URL.rstrip("/")

INSTALLED_APPS = [
    # First, so its createsuperuser (which also prints the staff two-factor set-up link) wins.
    "accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.amazon_cognito",
    "allauth.mfa",
    "allauth.usersessions",
    "django_celery_beat",
    "forecasts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A visitor's sign page from memory, before the session, CSRF and login work (forecasts/web/visitor_pages.py).
    "forecasts.web.visitor_pages.VisitorPageCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "accounts.auth_backends.EarlierSessionsMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "horoscope_site.security.AdminMFAMiddleware",
    "horoscope_site.security.UnconfiguredLoginProviderMiddleware",
]

ROOT_URLCONF = "horoscope_site.urls"
WSGI_APPLICATION = "horoscope_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "horoscope_site.context_processors.site",
            ],
            "libraries": {"fixed_urls": "horoscope_site.fixed_urls"},
        },
    },
]

DATABASES = {"default": database_from_url(env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Django's and allauth's, loading the reader's subscription with the user (accounts/auth_backends.py).
AUTHENTICATION_BACKENDS = [
    "accounts.auth_backends.ModelBackend",
    "accounts.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:dashboard"

# allauth: local accounts are the embedded default; Cognito is switched on by settings.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]  # one password box: sign-up fits a phone screen
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Daily Horoscope: "
# Sign-up also asks for the sign and time zone; the subscription starts pending (accounts.forms).
ACCOUNT_FORMS = {"signup": "accounts.forms.SignupForm"}
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"  # staff redirect, proxy IPs, confirming logs readers in
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_ONLY = False

COGNITO_DOMAIN = env.str("COGNITO_DOMAIN", default="").rstrip("/")
COGNITO_CLIENT_ID = env.str("COGNITO_CLIENT_ID", default="")
COGNITO_CLIENT_SECRET = SECRETS.get("COGNITO_CLIENT_SECRET") or ""
COGNITO_USER_POOL_ID = env.str("COGNITO_USER_POOL_ID", default="")
COGNITO_REGION = env.str("COGNITO_REGION", default=env.str("AWS_REGION", default="us-east-1"))
# API bearer tokens: the exact `iss` claim the user pool writes, and where its signing keys are.
COGNITO_ISSUER_URL = env.str(
    "COGNITO_ISSUER_URL",
    default=(
        f"https://cognito-idp.{COGNITO_REGION}.amazonaws.com/{COGNITO_USER_POOL_ID}" if COGNITO_USER_POOL_ID else ""
    ),
).rstrip("/")
COGNITO_JWKS_URL = env.str(
    "COGNITO_JWKS_URL", default=f"{COGNITO_ISSUER_URL}/.well-known/jwks.json" if COGNITO_ISSUER_URL else ""
)
COGNITO_JWKS_CACHE_SECONDS = env.int("COGNITO_JWKS_CACHE_SECONDS", default=3600)
COGNITO_ENABLED = bool(COGNITO_DOMAIN and COGNITO_CLIENT_ID)
require(
    not (COGNITO_ENABLED and PRODUCTION) or bool(COGNITO_CLIENT_SECRET),
    "COGNITO_CLIENT_SECRET is required when Cognito login is configured in production",
)
SOCIALACCOUNT_PROVIDERS = {
    "amazon_cognito": {
        "DOMAIN": COGNITO_DOMAIN,
        "EMAIL_AUTHENTICATION": True,
        "VERIFIED_EMAIL": False,
        "APPS": (
            [{"client_id": COGNITO_CLIENT_ID, "secret": COGNITO_CLIENT_SECRET, "key": ""}] if COGNITO_ENABLED else []
        ),
        "OAUTH_PKCE_ENABLED": True,
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Email: a local outbox of .eml files by default; django-ses (SESv2) in production.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="forecasts.sending.outbox.OutboxEmailBackend")
EMAIL_OUTBOX_DIR = Path(env.str("EMAIL_OUTBOX_DIR", default=str(VAR_DIR / "outbox")))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Daily Horoscope <horoscope@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Where readers write to a person (About, Privacy, Terms and the footer show it); by default
# the sender's address, which must then be read by someone.
CONTACT_EMAIL = env.str("CONTACT_EMAIL", default="") or parseaddr(DEFAULT_FROM_EMAIL)[1]
require(
    not PRODUCTION or "localhost" not in DEFAULT_FROM_EMAIL,
    "DEFAULT_FROM_EMAIL must be a real, SES-verified sender when DJANGO_ENV=production",
)
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
AWS_SES_REGION_NAME = env.str("AWS_SES_REGION_NAME", default=AWS_REGION)
AWS_SES_REGION_ENDPOINT = env.str("AWS_SES_REGION_ENDPOINT", default=f"email.{AWS_SES_REGION_NAME}.amazonaws.com")
AWS_SES_REGION_ENDPOINT_URL = env.str("AWS_SES_REGION_ENDPOINT_URL", default=f"https://{AWS_SES_REGION_ENDPOINT}")
USE_SES_V2 = True
AWS_SES_CONFIGURATION_SET = env.str("AWS_SES_CONFIGURATION_SET", default="") or None
# The shared limiter below paces sends across all workers; django-ses's own
# throttle only knows about one process, so it is turned off.
AWS_SES_AUTO_THROTTLE = None
AWS_SES_VERIFY_EVENT_SIGNATURES = True
AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = env.list("AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS", default=[])
# Host names SNS signing certificates and subscription URLs may come from; "*" stands for one
# DNS label. A bare "amazonaws.com" would also trust S3 buckets, where anyone can host a file.
AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS = env.list(
    "AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS", default=["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"]
)
# CA bundle for fetching SNS certificates (empty: the system's trust store).
AWS_SNS_CA_BUNDLE = env.str("AWS_SNS_CA_BUNDLE", default="") or None
SES_MAX_SEND_RATE = env.float("SES_MAX_SEND_RATE", default=0.0)  # 0: ask SES GetAccount
# botocore must not resend SendEmail by itself: a retried call after a read timeout may mail
# the reader twice, and throttling is retried by the send path under the shared rate.
AWS_SES_CONFIG = botocore.config.Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=env.float("SES_CONNECT_TIMEOUT", default=5.0),
    read_timeout=env.float("SES_READ_TIMEOUT", default=20.0),
)

# Celery: a broker that needs no server by default (the database holds what must be
# sent, so losing a broker message is recoverable); Redis or SQS by URL alone.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_BROKER_TRANSPORT_OPTIONS = celery_broker_options(CELERY_BROKER_URL, VAR_DIR / "broker", env)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Each worker records a heartbeat in the database this often; /healthz wants one from the last
# three intervals (see forecasts/sending/heartbeats.py).
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=15)
require(WORKER_HEARTBEAT_SECONDS > 0, "WORKER_HEARTBEAT_SECONDS must be a positive number of seconds")
# A worker silent this long is lost: what it held is recovered by the next dispatch
# (forecasts/sending/recovery.py). Three beats, as for /healthz.
WORKER_LOST_SECONDS = env.int("WORKER_LOST_SECONDS", default=3 * WORKER_HEARTBEAT_SECONDS)
require(WORKER_LOST_SECONDS > WORKER_HEARTBEAT_SECONDS, "WORKER_LOST_SECONDS must exceed WORKER_HEARTBEAT_SECONDS")
# A claimed chunk's emails are handed to SES within this many seconds of the claim, or put back;
# so recovery knows when a lost worker can no longer be sending what it claimed.
SEND_CLAIM_LEASE_SECONDS = env.int("SEND_CLAIM_LEASE_SECONDS", default=20)
# On when the SES configuration set publishes Send events to /ses/events/: a lost worker's email
# with no Send event SES_SEND_EVENT_WAIT_SECONDS later never reached SES and is sent again.
SES_SEND_EVENTS = env.bool("SES_SEND_EVENTS", default=False)
SES_SEND_EVENT_WAIT_SECONDS = env.int("SES_SEND_EVENT_WAIT_SECONDS", default=30)

REDIS_URL = env.str("REDIS_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "horoscope_site.redis_cache.SharedClientRedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Sessions are read from the cache and written through to the database (logout and account
# deletion remove both). Only with Redis: a cache in each process's memory would keep serving a
# session another process ended.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"
# How long sign pages and the dashboard keep what every viewer shares (forecasts/reading_cache.py):
# an edit is shown at once; this only bounds a change the cache was not told of. Without Redis
# each process has its own cache, which misses what other processes (a worker) write.
PAGE_CACHE_SECONDS = env.int("PAGE_CACHE_SECONDS", default=900 if REDIS_URL else 60)

# The daily send (forecasts/sending/: dispatch.py, send.py, upkeep.py).
SEND_BATCH_SIZE = env.int("SEND_BATCH_SIZE", default=100)  # deliveries per send task
# SES calls in flight at once per worker process (threads sharing one boto3 client), all under
# the shared rate. 1 spends the least CPU per email (threads contend for the GIL); raise it when
# SES answers slowly compared with the CPU an email takes, e.g. 4 for ~20 ms calls
# (docs/operations.md, "Sending faster").
SEND_CONCURRENCY = env.int("SEND_CONCURRENCY", default=1)
DISPATCH_CHUNK_SIZE = env.int("DISPATCH_CHUNK_SIZE", default=1000)  # subscriptions claimed per transaction
# PostgreSQL connections a dispatch run claims chunks with side by side once more than a chunk is
# due (the work is PostgreSQL's: 2 halves the time of 100,000 due on two cores; docs/benchmarks.md).
DISPATCH_CONNECTIONS = env.int("DISPATCH_CONNECTIONS", default=2)
require(DISPATCH_CONNECTIONS >= 1, "DISPATCH_CONNECTIONS must be 1 or more")
DELIVERY_STALE_QUEUED_MINUTES = env.int("DELIVERY_STALE_QUEUED_MINUTES", default=10)
DELIVERY_STUCK_SENDING_MINUTES = env.int("DELIVERY_STUCK_SENDING_MINUTES", default=30)
DELIVERY_EXPIRE_HOURS = env.int("DELIVERY_EXPIRE_HOURS", default=18)
require(
    DELIVERY_STUCK_SENDING_MINUTES * 60 > CELERY_TASK_TIME_LIMIT,
    "DELIVERY_STUCK_SENDING_MINUTES must be longer than CELERY_TASK_TIME_LIMIT",
)
# The send rate shared by every worker lives in Redis when there is one, else in the database.
SEND_RATE_LIMITER = env.str(
    "SEND_RATE_LIMITER",
    default="forecasts.sending.rate_stores.RedisRateLimiter"
    if REDIS_URL
    else "forecasts.sending.rate_stores.DatabaseRateLimiter",
)
# Send slots are spaced (1 s + this) / rate apart: covers the spread between a slot's instant and
# the request reaching SES, so SES never sees more than its maximum in any second. 0.02 let two
# busy worker hosts put R + 1 in one second (docs/benchmarks.md); 0.025 keeps 97.6% of the rate.
SES_RATE_WINDOW_MARGIN = env.float("SES_RATE_WINDOW_MARGIN", default=0.025)

# Service adapters, picked by dotted path as Django picks EMAIL_BACKEND.
OPENAI_API_KEY = SECRETS.get("OPENAI_API_KEY") or ""
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4.1-mini")
OPENAI_TIMEOUT = env.float("OPENAI_TIMEOUT", default=30.0)
PINECONE_API_KEY = SECRETS.get("PINECONE_API_KEY") or ""
PINECONE_INDEX = env.str("PINECONE_INDEX", default="horoscope-kb")
PINECONE_HOST = env.str("PINECONE_HOST", default="")
# Generation and retrieval (forecasts/writing/generation.py, forecasts/writing/retrieval.py). Empty dotted paths
# pick OpenAI / Pinecone when their key is set, else the offline composer / local BM25 index.
FORECAST_GENERATOR = env.str("FORECAST_GENERATOR", default="")
RETRIEVAL_BACKEND = env.str("RETRIEVAL_BACKEND", default="")
OPENAI_MAX_ATTEMPTS = env.int("OPENAI_MAX_ATTEMPTS", default=3)
OPENAI_BACKOFF = env.float("OPENAI_BACKOFF", default=1.0)
OPENAI_EMBED_MODEL = env.str("OPENAI_EMBED_MODEL", default="text-embedding-3-small")
OPENAI_EMBED_DIMENSION = env.int("OPENAI_EMBED_DIMENSION", default=1536)
PINECONE_EMBEDDINGS = env.str("PINECONE_EMBEDDINGS", default="pinecone")
PINECONE_EMBED_MODEL = env.str("PINECONE_EMBED_MODEL", default="multilingual-e5-large")
PINECONE_EMBED_DIMENSION = env.int("PINECONE_EMBED_DIMENSION", default=1024)
PINECONE_CLOUD = env.str("PINECONE_CLOUD", default="aws")
PINECONE_REGION = env.str("PINECONE_REGION", default="us-east-1")
PINECONE_TIMEOUT = env.float("PINECONE_TIMEOUT", default=10.0)
PINECONE_MAX_RETRIES = env.int("PINECONE_MAX_RETRIES", default=1)
FORECAST_CLAIM_STALE_MINUTES = env.int("FORECAST_CLAIM_STALE_MINUTES", default=10)
FORECAST_WAIT_SECONDS = env.float("FORECAST_WAIT_SECONDS", default=60.0)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Load balancer health checks ask for /healthz over plain http on the task's own address, with no
# X-Forwarded-Proto; a redirect would fail them. Readers' requests come through https and the rest
# of the site still redirects (docs/deploy.md).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_HSTS_SECONDS = 31536000 if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# No inline scripts or styles anywhere on the site; forms may post to the site itself and,
# for the login redirect, to the Cognito hosted UI.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *([COGNITO_DOMAIN] if COGNITO_DOMAIN else [])],
    }
}
# Error pages and error mails mask every secret value, not only settings named like one.
DEFAULT_EXCEPTION_REPORTER = "horoscope_site.security.SecretsMaskingReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "horoscope_site.security.SecretsCleansingFilter"
# Staff must use a second factor (TOTP) in the session before the admin opens.
ADMIN_REQUIRE_MFA = env.bool("ADMIN_REQUIRE_MFA", default=PRODUCTION)
# Staff add their first authenticator through a one-time link (accounts/staff_mfa.py): how long the
# link lasts, and how long a session that opened it may take to finish.
STAFF_MFA_LINK_HOURS = env.int("STAFF_MFA_LINK_HOURS", default=24)
STAFF_MFA_GRANT_MINUTES = env.int("STAFF_MFA_GRANT_MINUTES", default=30)
# Load balancers in front of the site (an ALB is 1): allauth takes the reader's address from
# X-Forwarded-For that many entries from the right, so each address has its own login limits.
# Production already trusts the proxy's X-Forwarded-Proto, so it assumes one proxy by default.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if PRODUCTION else 0)
require(ALLAUTH_TRUSTED_PROXY_COUNT >= 0, "TRUSTED_PROXY_COUNT must be 0 or more")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"mask_secrets": {"()": "horoscope_site.secrets.SecretsLogFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

# Production stops at start on anything that would silently lose mail, split the rate limits or
# weaken signatures (horoscope_site/production.py), every problem on its own line.
ALLOW_SQLITE_IN_PRODUCTION = env.bool("ALLOW_SQLITE_IN_PRODUCTION", default=False)
if PRODUCTION and (
    unsafe := production_problems(
        secret_key=SECRET_KEY,
        email_backend=EMAIL_BACKEND,
        database_engine=DATABASES["default"]["ENGINE"],
        broker_url=CELERY_BROKER_URL,
        cache_backend=CACHES["default"]["BACKEND"],
        allow_sqlite=ALLOW_SQLITE_IN_PRODUCTION,
    )
):
    raise ConfigError("\n".join(unsafe))
