"""The Celery worker's part in the daily send: load the send path before forking, and beat a heartbeat.

Both are connected by `connect_worker_hooks` from ForecastsConfig.ready(), which runs in a
worker's main process before it builds its bootsteps and sends `worker_init`.
"""

import logging

from celery import bootsteps, signals
from django.conf import settings
from django.db import DatabaseError, connection
from django.template.loader import get_template

from accounts.unsubscribe import preferences_url
from forecasts.sending import send  # noqa: F401 - the send path, loaded before the pool forks
from forecasts.sending.emails.render import DAILY_TEMPLATES
from forecasts.sending.heartbeats import heartbeat_record, heartbeats_forget_gone

logger = logging.getLogger(__name__)


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


def load_the_send_path(**kwargs) -> None:
    """Load what sending needs in the main process, before the pool forks its children.

    Each child then starts with it (shared, copy-on-write) instead of spending a third of a
    second of its first batch on it: boto3, django-ses and redis imported, the URL resolver built (the
    first reverse() imports every view), the email templates compiled by the cached loader.
    """
    # Only now: the web and manage.py, which import this module too, never need them.
    import boto3  # noqa: F401
    import django_ses  # noqa: F401
    import redis  # noqa: F401

    preferences_url()
    for name in DAILY_TEMPLATES:
        get_template(name)


def connect_worker_hooks(app) -> None:
    """Add the heartbeat to `app`'s worker consumers and the warm-up to `worker_init` (once)."""
    if DatabaseHeartbeat not in app.steps["consumer"]:
        app.steps["consumer"].add(DatabaseHeartbeat)
    signals.worker_init.connect(load_the_send_path, dispatch_uid="forecasts.load_the_send_path")
