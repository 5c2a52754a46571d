"""Point this process's Celery app at a real broker for a test, and back."""

import contextlib
from collections.abc import Iterator

from kombu import pools

from horoscope_site.celery import app


def _reset_connections() -> None:
    # kombu keeps connection and producer pools per broker URL, process-wide: drop them all.
    pools.reset()
    app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None


@contextlib.contextmanager
def tasks_sent_to(broker_url: str, transport_options: dict | None = None) -> Iterator[None]:
    """Tasks enqueued here (e.g. by transaction.on_commit) go to `broker_url` while inside."""
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    _reset_connections()
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = transport_options or {}
    try:
        yield
    finally:
        _reset_connections()
        app.conf.broker_url, app.conf.broker_transport_options = saved
