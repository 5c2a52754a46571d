"""Handing deliveries to the workers, SEND_BATCH_SIZE per send task.

The task is named, not imported: forecasts/tasks.py wraps this package's services, so importing
it from here would make an import circle. ForecastsConfig.ready() imports the tasks, so the
name resolves to the registered task in every process (eager mode included).
"""

import logging
from collections.abc import Sequence

from celery import current_app
from django.conf import settings

logger = logging.getLogger(__name__)

SEND_TASK = "forecasts.tasks.deliveries_send_task"


def send_batch(delivery_ids: list[int]) -> None:
    """Enqueue one send task for these deliveries."""
    current_app.signature(SEND_TASK, args=[delivery_ids]).delay()


def deliveries_enqueue(delivery_ids: Sequence[int]) -> int:
    """Hand deliveries to the workers, SEND_BATCH_SIZE per task; returns the number of tasks.

    A broker that is down loses nothing: the deliveries stay queued in the database and
    `deliveries_requeue_stale` hands them over again later.
    """
    size = max(1, settings.SEND_BATCH_SIZE)
    batches = [list(delivery_ids[i : i + size]) for i in range(0, len(delivery_ids), size)]
    try:
        for batch in batches:
            send_batch(batch)
    except Exception:
        logger.exception("Could not enqueue %d deliveries; they stay queued and will be requeued", len(delivery_ids))
        return 0
    return len(batches)
