"""Handing deliveries to the workers, SEND_BATCH_SIZE per send task."""

import logging
from collections.abc import Sequence

from django.conf import settings

logger = logging.getLogger(__name__)


def enqueue_send_batches(delivery_ids: Sequence[int]) -> int:
    """Hand deliveries to the workers, SEND_BATCH_SIZE per task; returns the number of tasks.

    A broker that is down loses nothing: the deliveries stay queued in the database and
    `deliveries_requeue_stale` hands them over again later.
    """
    from forecasts.tasks import deliveries_send_task

    size = max(1, settings.SEND_BATCH_SIZE)
    batches = [list(delivery_ids[i : i + size]) for i in range(0, len(delivery_ids), size)]
    try:
        for batch in batches:
            deliveries_send_task.delay(batch)
    except Exception:
        logger.exception("Could not enqueue %d deliveries; they stay queued and will be requeued", len(delivery_ids))
        return 0
    return len(batches)
