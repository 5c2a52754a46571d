"""Operator commands of the daily send: dispatch_due, send_test_email, seed_demo."""

import subprocess
import sys
from datetime import UTC, date, datetime
from email import message_from_bytes

import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Subscription
from accounts.scheduling import local_date_of
from devtools.servers import REPO_ROOT, base_child_env
from forecasts.models import Delivery, Forecast
from forecasts.tests.factories import ForecastFactory, add_readers

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)


def test_dispatch_due_sync_sends_in_process(capsys):
    ForecastFactory(date=date(2025, 3, 9), sign="leo")
    add_readers(3, scheduled_from=START)

    call_command("dispatch_due", "--now", "2025-03-09T12:00:00Z", "--sync")

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2025-03-09 12:00:00 UTC: claimed 3 due subscriptions, queued 3 deliveries."
    assert out[1].startswith("Sent 3, failed 0,")
    assert len(mail.outbox) == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_dispatch_due_without_sync_hands_the_batches_to_the_workers(
    monkeypatch, capsys, django_capture_on_commit_callbacks
):
    from forecasts.sending import enqueue

    batches = []
    monkeypatch.setattr(enqueue, "send_batch", batches.append)
    add_readers(2, scheduled_from=START)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("dispatch_due", "--now", "2025-03-09T06:00")  # no offset: UTC
    assert [len(batch) for batch in batches] == [2]
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dispatch_due", "--now", "tomorrow"], "cannot read 'tomorrow' as an ISO 8601 date-time"),
        (["dispatch_due", "--later"], "unrecognized arguments: --later"),
        (["send_test_email", "not-an-address"], "'not-an-address' is not an email address"),
        (["send_test_email", "a@example.test", "--sign", "ophiuchus"], "unknown sign 'ophiuchus'"),
        (["send_test_email", "a@example.test", "--time-zone", "Mars/Olympus"], "'Mars/Olympus' is not a known"),
        (["seed_demo", "--subscribers", "0"], "--subscribers must be between 1 and"),
        (["seed_demo", "--subscribers", "many"], "invalid int value: 'many'"),
    ],
)
def test_bad_arguments_are_usage_errors(args, message):
    with pytest.raises(CommandError, match=message) as error:
        call_command(*args)
    assert error.value.returncode == 2


@pytest.mark.slow
def test_bad_arguments_print_one_line_and_exit_2_from_the_shell():
    for args in (["dispatch_due", "--now", "tomorrow"], ["seed_demo"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=base_child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stdout == ""


def test_send_test_email_uses_the_readers_own_subscription(capsys):
    (subscription,) = add_readers(time_zone="Asia/Tokyo", sign="pisces", scheduled_from=START)
    with time_machine.travel(timezone.now(), tick=False):  # the reader's date is the command's, even at midnight
        call_command("send_test_email", subscription.user.email.upper())
        today_in_tokyo = local_date_of(timezone.now(), "Asia/Tokyo")
    (message,) = mail.outbox
    assert message.to == [subscription.user.email.upper()]
    assert message.subject.startswith("[Test] Pisces, ")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Nobody prepared today's Pisces forecast: the send path writes it on demand.
    forecast = Forecast.objects.get(sign="pisces", date=today_in_tokyo)
    assert forecast.headline in message.body
    assert "Sent a sample Pisces email to" in capsys.readouterr().out


def test_send_test_email_to_a_stranger_has_no_unsubscribe_header():
    call_command("send_test_email", "stranger@example.test")
    (message,) = mail.outbox
    assert "List-Unsubscribe" not in message.extra_headers
    assert "Unsubscribe" in message.body  # the visible link still leads to the preferences


def test_seed_demo_creates_confirmed_subscribers_in_bulk(django_assert_max_num_queries, capsys):
    with django_assert_max_num_queries(12):  # three inserts per 5,000 readers, not three per reader
        call_command("seed_demo", "--subscribers", "6000", "--seed", "7")
    rows = Subscription.objects.filter(user__email__endswith="@example.test")
    assert rows.count() == 6000
    assert rows.filter(status="active", confirmed_at__isnull=False, next_send_at__isnull=False).count() == 6000
    assert rows.values("time_zone").distinct().count() > 30
    assert rows.values("user__email").distinct().count() == 6000
    sample = rows.order_by("?").first()
    assert sample.next_send_at == sample.compute_next_send_at(sample.confirmed_at)
    assert "Created 6000 confirmed demo subscribers" in capsys.readouterr().out


READERS_ON_SQLITE = """
from datetime import UTC, datetime
from forecasts.tests.factories import add_readers
start = datetime(2025, 3, 9, tzinfo=UTC)
add_readers(25, time_zone="Europe/Paris", sign="leo", scheduled_from=start)
add_readers(15, time_zone="America/New_York", sign="pisces", scheduled_from=start)
add_readers(2, sign="leo", status="paused", scheduled_from=start)
"""


@pytest.mark.slow
def test_the_daily_send_runs_on_the_embedded_sqlite_database(tmp_path):
    """`make run`'s defaults (SQLite, the outbox): the database's own paths of dispatch, claim and
    recording (the PostgreSQL ones are what every other send test runs)."""
    env = base_child_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        EMAIL_BACKEND="forecasts.sending.outbox.OutboxEmailBackend",
        EMAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        VAR_DIR=str(tmp_path / "var"),
        CELERY_BROKER_URL="memory://",
    )

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage("migrate", "--verbosity", "0")
    manage("shell", "--command", READERS_ON_SQLITE)
    out = manage("dispatch_due", "--now", "2025-03-09T12:00:00Z", "--sync").splitlines()
    assert out[0] == "2025-03-09 12:00:00 UTC: claimed 40 due subscriptions, queued 40 deliveries."
    assert out[1].startswith("Sent 40, failed 0,"), out
    emails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(emails) == 40
    assert len({message_from_bytes(path.read_bytes())["To"] for path in emails}) == 40
    statuses = "from forecasts.models import Delivery; print(list(Delivery.objects.values_list('status', flat=True)))"
    assert manage("shell", "--no-imports", "--command", statuses).strip() == str(["sent"] * 40)
    # Run again: everything is recorded as sent, so nothing is sent twice.
    again = manage("dispatch_due", "--now", "2025-03-09T12:05:00Z", "--sync").splitlines()
    assert again == ["2025-03-09 12:05:00 UTC: claimed 0 due subscriptions, queued 0 deliveries."]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 40
