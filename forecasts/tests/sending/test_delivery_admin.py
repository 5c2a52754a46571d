"""The admin's view of the daily send, the resend action, the schedule, and the web version."""

import json
from datetime import UTC, date, datetime, time
from importlib import import_module

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from accounts.models import User
from forecasts.models import Delivery
from forecasts.tests.factories import ForecastFactory, add_readers

pytestmark = pytest.mark.django_db

DAY = date(2025, 3, 9)


@pytest.fixture
def admin_client(client):
    staff = User.objects.create(email="staff@example.test", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def deliveries(statuses: dict[str, int], hour: int = 5) -> list[Delivery]:
    made = []
    for status, count in statuses.items():
        for subscription in add_readers(count):
            made.append(
                Delivery.objects.create(
                    subscription=subscription,
                    local_date=DAY,
                    due_at=datetime(2025, 3, 9, hour, tzinfo=UTC),
                    status=status,
                    error="SES MessageRejected: Address blacklisted." if status == "failed" else "",
                )
            )
    return made


def test_the_run_page_counts_a_days_deliveries_by_status_and_hour(admin_client, django_assert_max_num_queries):
    deliveries({"sent": 3, "delivered": 2, "failed": 2, "bounced": 1}, hour=5)
    deliveries({"queued": 1, "complained": 1}, hour=17)
    url = reverse("admin:forecasts_delivery_run") + "?date=2025-03-09"

    with django_assert_max_num_queries(12):
        response = admin_client.get(url)

    assert response.status_code == 200
    report = response.context["report"]
    assert report["due"] == 10
    assert report["totals"]["sent"] == 3 and report["totals"]["failed"] == 2
    assert [(row["hour"].hour, row["due"]) for row in report["hours"]] == [(5, 8), (17, 2)]
    page = response.content.decode()
    assert "Address blacklisted." in page
    failing = reverse("admin:forecasts_delivery_changelist") + "?local_date=2025-03-09&amp;status__exact=failed"
    assert failing in page
    listed = admin_client.get(failing.replace("&amp;", "&"))
    assert listed.status_code == 200 and listed.context["cl"].result_count == 2


def test_the_run_page_shrugs_off_a_bad_date(admin_client):
    response = admin_client.get(reverse("admin:forecasts_delivery_run") + "?date=yesterday", follow=True)
    assert response.status_code == 200
    assert "That is not a date" in response.content.decode()


def test_the_run_page_is_for_staff_only(client):
    response = client.get(reverse("admin:forecasts_delivery_run"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_resend_action_requeues_failed_and_unknown_deliveries(
    admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    from forecasts.sending import enqueue

    batches = []
    monkeypatch.setattr(enqueue, "send_batch", batches.append)
    failed, unknown, sent = deliveries({"failed": 1, "unknown": 1, "sent": 1})
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:forecasts_delivery_changelist"),
            {"action": "resend", "_selected_action": [failed.pk, unknown.pk, sent.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert sorted(batches[0]) == sorted([failed.pk, unknown.pk])
    assert set(Delivery.objects.filter(pk__in=[failed.pk, unknown.pk]).values_list("status", flat=True)) == {"queued"}
    assert Delivery.objects.get(pk=sent.pk).status == "sent"
    page = response.content.decode()
    assert "2 deliveries put back in the queue" in page and "1 skipped" in page


def test_the_resend_action_marks_sent_an_unknown_delivery_the_email_service_accepted(
    admin_client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.mail import EmailMessage

    from forecasts.sending import enqueue
    from forecasts.sending.outbox import OutboxEmailBackend

    batches = []
    monkeypatch.setattr(enqueue, "send_batch", batches.append)
    mailed, lost = deliveries({"unknown": 2})
    message = EmailMessage("s", "b", "from@example.test", [mailed.subscription.user.email])
    message.extra_headers["X-Horoscope-Delivery"] = str(mailed.pk)
    OutboxEmailBackend().send_messages([message])  # it reached the outbox before its worker died
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:forecasts_delivery_changelist"),
            {"action": "resend", "_selected_action": [mailed.pk, lost.pk]},
            follow=True,
        )
    assert batches == [[lost.pk]]
    assert Delivery.objects.get(pk=mailed.pk).status == "sent"
    page = response.content.decode()
    assert "1 deliveries put back in the queue" in page and "1 not resent" in page


def test_the_daily_pipeline_is_scheduled_by_the_data_migration():
    tasks = {task.task: task for task in PeriodicTask.objects.select_related("crontab")}
    dispatch = tasks["forecasts.tasks.deliveries_dispatch_due_task"]
    assert (dispatch.crontab.minute, dispatch.crontab.hour, dispatch.enabled) == ("*", "*", True)
    assert tasks["forecasts.tasks.deliveries_requeue_stale_task"].crontab.minute == "*/5"
    prepare = PeriodicTask.objects.filter(task="forecasts.tasks.forecasts_prepare_task").order_by("crontab__hour")
    assert [(p.crontab.hour, json.loads(p.kwargs)) for p in prepare] == [
        ("20", {"days_ahead": 2}),
        ("8", {"days_ahead": 1}),
    ]
    # Named for what they prepare (migration 0009): every date that is today somewhere, and ahead.
    assert [p.name for p in prepare] == [
        "Prepare forecasts for today everywhere up to the day after tomorrow (20:00 UTC)",
        "Prepare forecasts for today everywhere and tomorrow (08:00 UTC)",
    ]
    assert all("today somewhere on Earth" in p.description for p in prepare)
    assert all(str(p.crontab.timezone) == "UTC" for p in prepare)
    assert PeriodicTasks.objects.get(ident=1).last_update is not None


def test_renaming_the_prepare_tasks_leaves_a_name_an_operator_gave_alone():
    from django.apps import apps

    migration = import_module("forecasts.migrations.0009_prepare_task_names")
    migration.rename_back(apps, None)  # the names before 0009
    PeriodicTask.objects.filter(name="Prepare forecasts two UTC dates ahead (20:00 UTC)").update(name="Ours, at 20:00")

    migration.rename(apps, None)

    prepare = PeriodicTask.objects.filter(task="forecasts.tasks.forecasts_prepare_task")
    assert set(prepare.values_list("name", flat=True)) == {
        "Prepare forecasts for today everywhere and tomorrow (08:00 UTC)",
        "Ours, at 20:00",
    }


def test_the_web_version_shows_every_topic_with_times_in_the_asked_zone(client):
    ForecastFactory(date=DAY, sign="leo")
    response = client.get("/signs/leo/2025-03-09/?tz=Asia/Tokyo")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Say it plainly &amp; kindly" in page
    assert "Career: finish one thing &lt;properly&gt;." in page
    assert "at 23:32 (Asia/Tokyo)" in page  # 14:32 UTC
    assert "exact at 12:10 Asia/Tokyo time" in page
    fallback = client.get("/signs/leo/2025-03-09/?tz=Nowhere/Land")  # falls back to UTC
    assert fallback.status_code == 200
    assert "at 14:32 (UTC)" in fallback.content.decode()


@pytest.mark.parametrize("path", ["/signs/dragon/2025-03-09/", "/signs/leo/soon/"])
def test_the_web_version_is_404_for_what_does_not_exist(client, path):
    ForecastFactory(date=DAY, sign="leo")
    assert client.get(path).status_code == 404


def test_a_forecast_still_being_written_shows_no_text(client):
    ForecastFactory(date=DAY, sign="leo", status="generating", headline="Not yet checked")
    page = client.get("/signs/leo/2025-03-09/").content.decode()
    assert "Not yet checked" not in page
    assert "No reading was written for this date." in page


def test_the_emails_unsubscribe_header_works_as_a_one_click_post_without_cookies():
    from django.core import mail
    from django.test import Client

    from accounts.models import Subscription
    from forecasts.sending.dispatch import deliveries_dispatch_due
    from forecasts.sending.send import deliveries_send

    ForecastFactory(date=DAY, sign="leo")
    (subscription,) = add_readers(
        time_zone="UTC", delivery_time=time(6), scheduled_from=datetime(2025, 3, 9, tzinfo=UTC)
    )
    deliveries_send(deliveries_dispatch_due(datetime(2025, 3, 9, 6, tzinfo=UTC), enqueue=False).delivery_ids)
    header = mail.outbox[0].extra_headers["List-Unsubscribe"]
    url = header.strip("<>")
    mailbox_provider = Client(enforce_csrf_checks=True)  # no session, no cookies, no CSRF token

    scanner = mailbox_provider.get(url)  # a link scanner's GET only asks
    assert scanner.status_code == 200
    assert Subscription.objects.get(pk=subscription.pk).status == "active"

    response = mailbox_provider.post(
        url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert not mailbox_provider.cookies
    subscription.refresh_from_db()
    assert subscription.status == "unsubscribed" and subscription.next_send_at is None
