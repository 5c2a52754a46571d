"""The Celery worker's part in the daily send: load the send path before forking, beat a heartbeat,
note which deliveries it holds, and let a pool child hand its batch back on SIGTERM.

All are connected by `connect_worker_hooks` from ForecastsConfig.ready(), which runs in a
worker's main process before it builds its bootsteps and sends `worker_init`.
"""

import logging
import os

from celery import bootsteps, signals
from django.conf import settings
from django.db import DatabaseError, connection
from django.template.loader import get_template

from accounts.unsubscribe import preferences_url
from forecasts.sending import send  # noqa: F401 - the send path, loaded before the pool forks
from forecasts.sending.delivery_status import deliveries_hold
from forecasts.sending.emails.render import DAILY_TEMPLATES
from forecasts.sending.enqueue import SEND_TASK
from forecasts.sending.heartbeats import heartbeat_record, heartbeats_forget_gone
from forecasts.sending.holders import set_worker_name, this_worker
from forecasts.sending.stopping import ignore_sigterm_until_a_task, stop_on_sigterm

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
        self.beat(c, starting=True)
        self.tref = c.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, self.beat, (c,), priority=10)

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop

    def beat(self, c, starting: bool = False) -> None:
        try:
            if starting:
                heartbeats_forget_gone()
            # The pool's processes too: recovery sees a killed child's pid gone (forecasts/sending/holders.py).
            heartbeat_record(c.hostname, pids=[os.getpid(), *pool_pids(c.pool)])
        except DatabaseError as exc:
            # The worker carries on; /healthz sees the heartbeat's age and says so.
            logger.warning("worker heartbeat not recorded: %s: %s", type(exc).__name__, exc)
        finally:
            # No connection is kept between beats: one dropped by the server would stay broken
            # in this process, where nothing runs Django's close_old_connections.
            connection.close()


def pool_pids(pool) -> list[int]:
    """The pids of a prefork pool's children (none for the solo and thread pools)."""
    processes = getattr(getattr(pool, "_pool", None), "_pool", None) or []
    return [process.pid for process in processes if getattr(process, "pid", None)]


def hold_received_deliveries(sender=None, request=None, **kwargs) -> None:
    """A send task arrived: note that this worker holds its queued deliveries (in the main process).

    Until a child claims them they are only in this worker's hands; if it is lost, recovery
    enqueues them again at once instead of waiting for the broker's visibility timeout.
    """
    if request is None or request.name != SEND_TASK or not request.args:
        return
    try:
        deliveries_hold(request.args[0], this_worker())
    except Exception as exc:  # never in the way of consuming: the task runs anyway, only a quick recovery is lost
        logger.warning("deliveries of task %s not noted as held: %s: %s", request.id, type(exc).__name__, exc)
        if isinstance(exc, DatabaseError):
            connection.close()


def name_the_worker(sender=None, **kwargs) -> None:
    """worker_init: the node name every claim of this worker's processes writes."""
    hostname = getattr(sender, "hostname", None)
    if hostname:
        set_worker_name(hostname)


def in_pool_child(**kwargs) -> None:
    """worker_process_init: SIGTERM must not kill a pool child (see forecasts/sending/stopping.py)."""
    ignore_sigterm_until_a_task()


def before_a_task(**kwargs) -> None:
    """task_prerun, in the process running it: SIGTERM hands the running batch back."""
    stop_on_sigterm()  # only in a pool child: not in a solo worker's or an eager run's process


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
    signals.worker_init.connect(name_the_worker, dispatch_uid="forecasts.name_the_worker")
    signals.worker_process_init.connect(in_pool_child, dispatch_uid="forecasts.in_pool_child")
    signals.task_prerun.connect(before_a_task, dispatch_uid="forecasts.before_a_task")
    signals.task_received.connect(hold_received_deliveries, dispatch_uid="forecasts.hold_received_deliveries")
