"""Worker heartbeats: one small row per worker, kept current by the worker, shown in the admin."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import User
from forecasts.models import WorkerHeartbeat
from forecasts.sending.heartbeats import heartbeat_latest, heartbeat_problem, heartbeat_record, heartbeats_forget_gone

NOW = datetime(2025, 3, 9, 6, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_worker_keeps_one_row_that_each_beat_moves_forward():
    heartbeat_record("w1@host-a", NOW)
    heartbeat_record("w1@host-a", NOW + timedelta(seconds=30))
    heartbeat_record("w2@host-b", NOW + timedelta(seconds=10))

    rows = list(WorkerHeartbeat.objects.order_by("hostname").values_list("hostname", "beat_at"))
    assert rows == [("w1@host-a", NOW + timedelta(seconds=30)), ("w2@host-b", NOW + timedelta(seconds=10))]
    assert heartbeat_latest() == NOW + timedelta(seconds=30)


@pytest.mark.django_db
def test_rows_of_workers_silent_for_a_week_are_forgotten():
    heartbeat_record("gone@old-container", NOW - timedelta(days=8))
    heartbeat_record("quiet@stopped-yesterday", NOW - timedelta(days=1))

    assert heartbeats_forget_gone(NOW) == 1
    assert list(WorkerHeartbeat.objects.values_list("hostname", flat=True)) == ["quiet@stopped-yesterday"]


@pytest.mark.parametrize(
    ("latest", "problem"),
    [
        (None, "no worker has ever reported"),
        (NOW, None),
        (NOW - timedelta(seconds=90), None),  # three intervals of 30 s: still alive
        (NOW - timedelta(seconds=91), "last worker heartbeat 91 s ago"),
        (NOW - timedelta(hours=2), "last worker heartbeat 7200 s ago"),
        (NOW + timedelta(seconds=2), None),  # a worker whose clock runs a little ahead
    ],
)
def test_a_worker_is_alive_while_its_heartbeat_is_three_intervals_old_at_most(latest, problem):
    assert heartbeat_problem(latest, NOW, interval_s=30) == problem


@pytest.mark.django_db
def test_the_admin_lists_workers_and_which_are_alive_read_only(client, settings):
    settings.WORKER_HEARTBEAT_SECONDS = 30
    client.force_login(User.objects.create(email="staff@example.test", is_staff=True, is_superuser=True))
    heartbeat_record("w1@alive", NOW - timedelta(seconds=20))
    heartbeat_record("w2@silent", NOW - timedelta(minutes=10))

    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("admin:forecasts_workerheartbeat_changelist"))

    assert response.status_code == 200
    # Newest first, each with Django's yes/no icon in the "alive" column.
    page = response.content.decode()
    assert re.findall(r'<th class="field-hostname"><a href="[^"]*">([^<]+)</a>', page) == ["w1@alive", "w2@silent"]
    assert re.findall(r'<td class="field-alive"><img src="[^"]*" alt="(\w+)">', page) == ["True", "False"]
    assert client.get(reverse("admin:forecasts_workerheartbeat_add")).status_code == 403
    row = WorkerHeartbeat.objects.get(hostname="w1@alive")
    change = client.get(reverse("admin:forecasts_workerheartbeat_change", args=[row.pk]))
    assert change.status_code == 200
    assert not change.context["has_change_permission"]
