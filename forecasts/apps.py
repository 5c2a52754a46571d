from django.apps import AppConfig


class ForecastsConfig(AppConfig):
    name = "forecasts"
    verbose_name = "Forecasts and the daily send"

    def ready(self) -> None:
        from celery import current_app

        # Registers the Celery tasks in every process, so a task enqueued by name
        # (forecasts/sending/enqueue.py) is the registered one, eager mode included.
        from forecasts import tasks  # noqa: F401
        from forecasts.reading_cache import connect_signals
        from forecasts.sending.worker import connect_worker_hooks

        connect_worker_hooks(current_app)
        # A saved or deleted Forecast is rebuilt on the pages that show it.
        connect_signals()
