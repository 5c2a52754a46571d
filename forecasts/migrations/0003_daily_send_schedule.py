"""The daily pipeline's periodic tasks, for django-celery-beat's DatabaseScheduler.

They are created here once and then belong to the admin (Periodic tasks): an operator may
change times or switch a task off, and later deploys do not overwrite that.

When forecasts are prepared. A Forecast is per (local date, sign), and the first reader to
need date D is the one furthest east: UTC+14 (Pacific/Kiritimati), whose local midnight of D is
10:00 UTC on D-1 (their 06:00 is 16:00 UTC on D-1). So:
- at 20:00 UTC, prepare the UTC date two days ahead (D+2 is then 38 hours before its first
  possible send);
- at 08:00 UTC, prepare the next UTC date again (D+1; two hours before UTC+14's midnight).
  Preparing is idempotent, so this second run only fills in what the first one missed.
The most westerly readers (UTC-11/-12) reach date D at up to 12:00 UTC on D+1, long after.
The send path copes with a forecast that is still missing: the delivery waits, queued, with
its reason shown in the admin, and is retried.
"""

from django.db import migrations
from django.utils import timezone

TASKS = [
    {
        "name": "Dispatch due daily emails (every minute)",
        "task": "forecasts.tasks.deliveries_dispatch_due_task",
        "crontab": {"minute": "*", "hour": "*"},
        "kwargs": "{}",
        "description": "Claims the subscriptions whose local send time has come and queues their emails.",
    },
    {
        "name": "Requeue stale deliveries (every 5 minutes)",
        "task": "forecasts.tasks.deliveries_requeue_stale_task",
        "crontab": {"minute": "*/5", "hour": "*"},
        "kwargs": "{}",
        "description": (
            "Hands deliveries left queued (lost broker message, missing forecast, throttling) to a worker "
            "again, marks the ones stuck in sending as unknown and gives up on the ones far past their time."
        ),
    },
    {
        "name": "Prepare forecasts for the next UTC date (08:00 UTC)",
        "task": "forecasts.tasks.forecasts_prepare_task",
        "crontab": {"minute": "0", "hour": "8"},
        "kwargs": '{"days_ahead": 1}',
        "description": "Second chance for tomorrow's forecasts, two hours before UTC+14 readers reach that date.",
    },
    {
        "name": "Prepare forecasts two UTC dates ahead (20:00 UTC)",
        "task": "forecasts.tasks.forecasts_prepare_task",
        "crontab": {"minute": "0", "hour": "20"},
        "kwargs": '{"days_ahead": 2}',
        "description": "Writes the forecasts for the day after tomorrow, 38 hours before the first reader needs them.",
    },
]


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for spec in TASKS:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=spec["crontab"]["minute"],
            hour=spec["crontab"]["hour"],
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.get_or_create(
            name=spec["name"],
            defaults={
                "task": spec["task"],
                "crontab": crontab,
                "kwargs": spec["kwargs"],
                "description": spec["description"],
                "enabled": True,
            },
        )
    # A running beat only re-reads its schedule when this timestamp moves.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTask.objects.filter(name__in=[spec["name"] for spec in TASKS]).delete()
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [
        ("forecasts", "0002_delivery_events_rate"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
