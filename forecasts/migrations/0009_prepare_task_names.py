"""The two forecast-preparing tasks are named for what they do.

Since dates_to_prepare, `forecasts_prepare_task` writes what is missing for every date that is
today somewhere on Earth, and for the UTC dates up to `days_ahead` after today; their names
from 0003 still said "the next UTC date" and "two UTC dates ahead". As in 0003, the tasks
belong to the admin: a task an operator renamed or described anew is left as it is.
"""

from django.db import migrations
from django.utils import timezone

# (name and description in 0003, name and description now)
RENAMES = [
    (
        (
            "Prepare forecasts for the next UTC date (08:00 UTC)",
            "Second chance for tomorrow's forecasts, two hours before UTC+14 readers reach that date.",
        ),
        (
            "Prepare forecasts for today everywhere and tomorrow (08:00 UTC)",
            "Writes the forecasts still missing for every date that is today somewhere on Earth and for "
            "tomorrow (UTC): the second chance for tomorrow's, two hours before readers at UTC+14 reach it.",
        ),
    ),
    (
        (
            "Prepare forecasts two UTC dates ahead (20:00 UTC)",
            "Writes the forecasts for the day after tomorrow, 38 hours before the first reader needs them.",
        ),
        (
            "Prepare forecasts for today everywhere up to the day after tomorrow (20:00 UTC)",
            "Writes the forecasts still missing for every date that is today somewhere on Earth and up to "
            "the day after tomorrow (UTC), 38 hours before the first reader needs that date.",
        ),
    ),
]


def _rename(apps, pairs) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for (old_name, old_description), (new_name, new_description) in pairs:
        PeriodicTask.objects.filter(
            name=old_name, description=old_description, task="forecasts.tasks.forecasts_prepare_task"
        ).update(name=new_name, description=new_description)
    # A running beat only re-reads its schedule when this timestamp moves.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def rename(apps, schema_editor):
    _rename(apps, RENAMES)


def rename_back(apps, schema_editor):
    _rename(apps, [(new, old) for old, new in RENAMES])


class Migration(migrations.Migration):
    dependencies = [
        ("forecasts", "0008_worker_holders"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
