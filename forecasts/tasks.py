"""Celery tasks: thin wrappers that call one service each (forecasts/sending/, forecasts/writing/)."""

import logging
from datetime import date

from celery import shared_task
from django.utils import timezone

from forecasts.earth_dates import dates_to_prepare
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.enqueue import SEND_TASK
from forecasts.sending.recovery import workers_recover_lost
from forecasts.sending.send import DeliveriesRetryLater, deliveries_send
from forecasts.sending.upkeep import deliveries_requeue_stale
from forecasts.writing.generation import forecast_get_or_generate, forecasts_missing

logger = logging.getLogger(__name__)


@shared_task(name="forecasts.tasks.deliveries_dispatch_due_task")
def deliveries_dispatch_due_task() -> dict:
    """Every minute (beat): recover what lost workers held, then claim due subscriptions and queue their emails."""
    try:
        recovered = workers_recover_lost().as_dict()
    except Exception:
        # The day's dispatch must not wait on recovery; the next minute tries again.
        logger.exception("Recovery from lost workers failed")
        recovered = None
    result = deliveries_dispatch_due()
    return {
        "claimed": result.claimed,
        "queued": len(result.delivery_ids),
        "skipped_late": result.skipped_late,
        "stopped": result.stopped,
        "recovered": recovered,
    }


@shared_task(
    name=SEND_TASK,
    acks_late=True,
    autoretry_for=(DeliveriesRetryLater,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=12,
)
def deliveries_send_task(delivery_ids: list[int]) -> dict:
    """Send one batch. Throttling and temporary errors retry the task with backoff and jitter;
    the batch's claim makes a redelivered or retried task skip what was already sent."""
    return deliveries_send(delivery_ids).as_dict()


@shared_task(name="forecasts.tasks.deliveries_requeue_stale_task")
def deliveries_requeue_stale_task() -> dict:
    """Every few minutes (beat): requeue stale deliveries, mark stuck ones unknown, expire old ones."""
    return deliveries_requeue_stale().as_dict()


@shared_task(name="forecasts.tasks.forecasts_prepare_task")
def forecasts_prepare_task(days_ahead: int = 1, day: str | None = None) -> dict:
    """Beat: queue one task per forecast still missing for every date that is today somewhere on
    Earth now, and for the UTC dates up to today + days_ahead. `day` (YYYY-MM-DD) asks for that
    one date only (an operator's re-run).

    One sign per task keeps each task short (at most OPENAI_MAX_ATTEMPTS model calls) and lets
    several workers write in parallel; the claim in forecasts/writing/generation.py makes duplicates harmless.
    """
    dates = [date.fromisoformat(day)] if day else dates_to_prepare(timezone.now(), days_ahead)
    missing = forecasts_missing(dates[0], len(dates))
    for missing_day, sign in missing:
        forecast_prepare_task.delay(missing_day.isoformat(), sign)
    return {"queued": [f"{missing_day.isoformat()} {sign}" for missing_day, sign in missing]}


@shared_task(name="forecasts.tasks.forecast_prepare_task", acks_late=True)
def forecast_prepare_task(day: str, sign: str) -> str:
    """Write one forecast, unless it is written already or another worker is writing it."""
    forecast = forecast_get_or_generate(date.fromisoformat(day), sign, wait=0)
    return forecast.status if forecast else "being written by another worker"
