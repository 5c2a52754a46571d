"""The environment of a production start that passes horoscope_site/production.py's checks.

The services are named, not reached: nothing connects to them while settings load, and each test
overrides what it puts to the test (a broker kind, a Redis URL, a missing key).
"""

PRODUCTION_REQUIRED_ONLY = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "k7Qm2vX9pL4wR8sT1yU6zA3bC5dE0fG-hJ_iK9lM2nO4pQ7rS1tV",
    "ALLOWED_HOSTS": "horoscope.example.com",
    "SITE_URL": "https://horoscope.example.com",
    "DEFAULT_FROM_EMAIL": "Daily Horoscope <daily@horoscope.example.com>",
}
PRODUCTION_ENV = {
    **PRODUCTION_REQUIRED_ONLY,
    # Shared services, of the kinds production requires.
    "DATABASE_URL": "postgres://horoscope@db.internal:5432/horoscope",
    "CELERY_BROKER_URL": "redis://cache.internal:6379/1",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "EMAIL_BACKEND": "django_ses.SESBackend",
}
