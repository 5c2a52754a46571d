"""The Celery app: settings come from Django settings under the CELERY_ namespace.

Wiring only: the apps connect their own worker hooks (forecasts/sending/worker.py, from
ForecastsConfig.ready()).
"""

import os

from celery import Celery

from horoscope_site.entrypoints import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "horoscope_site.settings")

app = Celery("horoscope_site")
with exit_on_config_error():
    app.config_from_object("django.conf:settings", namespace="CELERY")
    # Load settings now so a bad configuration stops the worker with one line.
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018
app.autodiscover_tasks()


@app.task(name="horoscope_site.ping_task")
def ping_task(value: str) -> str:
    """Echo a value back: lets tests and health checks see a worker do real work."""
    return value
