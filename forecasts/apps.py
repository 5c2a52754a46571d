from django.apps import AppConfig


class ForecastsConfig(AppConfig):
    name = "forecasts"
    verbose_name = "Forecasts and the daily send"

    def ready(self) -> None:
        # Registers the Celery tasks in every process, so a task enqueued by name
        # (forecasts/sending/enqueue.py) is the registered one, eager mode included.
        from forecasts import tasks  # noqa: F401
