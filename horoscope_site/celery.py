"""The Celery app: settings come from Django settings under the CELERY_ namespace."""

import logging
import os

from celery import Celery, bootsteps, signals
from django.db import DatabaseError, connection

from horoscope_site.entrypoints import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "horoscope_site.settings")

logger = logging.getLogger(__name__)

app = Celery("horoscope_site")
with exit_on_config_error():
    app.config_from_object("django.conf:settings", namespace="CELERY")
    # Load settings now so a bad configuration stops the worker with one line.
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018
app.autodiscover_tasks()


class DatabaseHeartbeat(bootsteps.StartStopStep):
    """Record in the database that this worker is alive: at once, then every WORKER_HEARTBEAT_SECONDS.

    /healthz reads it (forecasts/sending/heartbeats.py); Celery's own heartbeats are events sent over the
    broker, which the web would have to consume. A step of the consumer, started once tasks are
    consumed: its beats stop while the worker has lost the broker and resume when it reconnects.
    Not a beat task: beat may be down while workers are fine, and a task waits behind the queue.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.tref = None

    def start(self, c):
        # At once, so a freshly started worker counts as alive without waiting an interval.
        self.beat(c.hostname, starting=True)
        self.tref = c.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, self.beat, (c.hostname,), priority=10)

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop

    def beat(self, hostname: str, starting: bool = False) -> None:
        # Imported here: this module is loaded before Django's apps are ready.
        from forecasts.sending.heartbeats import heartbeat_record, heartbeats_forget_gone

        try:
            if starting:
                heartbeats_forget_gone()
            heartbeat_record(hostname)
        except DatabaseError as exc:
            # The worker carries on; /healthz sees the heartbeat's age and says so.
            logger.warning("worker heartbeat not recorded: %s: %s", type(exc).__name__, exc)
        finally:
            # No connection is kept between beats: one dropped by the server would stay broken
            # in this process, where nothing runs Django's close_old_connections.
            connection.close()


app.steps["consumer"].add(DatabaseHeartbeat)


@app.task(name="horoscope_site.ping_task")
def ping_task(value: str) -> str:
    """Echo a value back: lets tests and health checks see a worker do real work."""
    return value


@signals.worker_init.connect
def load_the_send_path(**kwargs) -> None:
    """Load what sending needs in the main process, before the pool forks its children.

    Each child then starts with it (shared, copy-on-write) instead of spending a third of a
    second of its first batch on it: boto3, django-ses and redis imported, the URL resolver built (the
    first reverse() imports every view), the email templates compiled by the cached loader.
    """
    import boto3  # noqa: F401
    import django_ses  # noqa: F401
    import redis  # noqa: F401
    from django.template.loader import get_template

    from accounts.unsubscribe import preferences_url
    from forecasts.sending import send  # noqa: F401
    from forecasts.sending.emails.render import DAILY_TEMPLATES

    preferences_url()
    for name in DAILY_TEMPLATES:
        get_template(name)
