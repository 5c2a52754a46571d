from datetime import date, timedelta
from urllib.parse import quote_plus

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django_celery_beat.admin import PeriodicTaskAdmin, PeriodicTaskForm
from django_celery_beat.models import PeriodicTask

from forecasts.models import Delivery, SesEvent, WorkerHeartbeat
from forecasts.sending.delivery_status import RESENDABLE
from forecasts.sending.heartbeats import heartbeat_problem
from forecasts.sending.upkeep import deliveries_resend, deliveries_run_report
from horoscope_site.json_input import JsonInputError, json_input_loads


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "reader", "local_date", "due_at", "status", "attempts", "sent_at", "short_error"]
    list_filter = ["status", "local_date"]
    search_fields = ["subscription__user__email", "ses_message_id", "error"]
    date_hierarchy = "local_date"
    list_select_related = ["subscription__user"]
    raw_id_fields = ["subscription", "forecast"]
    readonly_fields = [
        "subscription",
        "local_date",
        "due_at",
        "forecast",
        "status",
        "error",
        "attempts",
        "ses_message_id",
        "queued_at",
        "sending_at",
        "sent_at",
        "delivered_at",
        "updated_at",
        "held_by",
    ]
    actions = ["resend"]
    change_list_template = "admin/forecasts/delivery/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries are made by the dispatcher only

    @admin.display(description="reader", ordering="subscription__user__email")
    def reader(self, delivery: Delivery) -> str:
        return delivery.subscription.user.email

    @admin.display(description="error")
    def short_error(self, delivery: Delivery) -> str:
        return delivery.error[:80] + ("…" if len(delivery.error) > 80 else "")

    @admin.action(description="Resend the selected failed or unknown deliveries", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        resendable = list(queryset.filter(status__in=RESENDABLE).values_list("id", flat=True))
        count = deliveries_resend(resendable)
        skipped = queryset.count() - len(resendable)
        self.message_user(request, f"{count} deliveries put back in the queue and sent to the workers.")
        settled = Delivery.objects.filter(id__in=resendable, status=Delivery.Status.SENT).count()
        if settled:
            self.message_user(
                request,
                f"{settled} not resent: the email service has a record of accepting them, so they are marked sent.",
                messages.WARNING,
            )
        if skipped:
            self.message_user(
                request, f"{skipped} skipped: only failed or unknown deliveries can be resent.", messages.WARNING
            )

    def get_urls(self):
        run = self.admin_site.admin_view(self.run_view)
        return [path("run/", run, name="forecasts_delivery_run"), *super().get_urls()]

    def run_view(self, request: HttpRequest) -> HttpResponse:
        """One local date's send: counts by status and by UTC hour, and the errors with links."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.now().date()
        try:
            day = date.fromisoformat(request.GET.get("date", "")) if request.GET.get("date") else today
        except ValueError:
            messages.error(request, "That is not a date (YYYY-MM-DD); showing today instead.")
            day = today
        report = deliveries_run_report(day)
        changelist = reverse("admin:forecasts_delivery_changelist")
        for row in report["errors"]:
            row["link"] = (
                f"{changelist}?local_date={day.isoformat()}&status__exact={row['status']}&q={_first_words(row['error'])}"
            )
        columns = report["columns"]
        totals = [
            {
                "label": Delivery.Status(status).label,
                "count": report["totals"][status],
                "link": f"{changelist}?local_date={day.isoformat()}&status__exact={status}",
            }
            for status in columns
        ]
        hours = [{"hour": r["hour"], "due": r["due"], "cells": [r[s] for s in columns]} for r in report["hours"]]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Daily send for {day:%A} {day.day} {day:%B %Y}",
            "opts": self.model._meta,
            "report": report,
            "totals": totals,
            "hours": hours,
            "labels": [Delivery.Status(status).label for status in columns],
            "previous_day": (day - timedelta(days=1)).isoformat(),
            "next_day": (day + timedelta(days=1)).isoformat(),
            "today": today.isoformat(),
        }
        return TemplateResponse(request, "admin/forecasts/delivery/run.html", context)


def _first_words(error: str) -> str:
    return quote_plus(" ".join(error.split()[:6]))


@admin.register(SesEvent)
class SesEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "event_type", "bounce_type", "recipient_list", "delivery_link", "outcome"]
    list_filter = ["event_type", "bounce_type", "sns_type"]
    search_fields = ["ses_message_id", "sns_message_id", "outcome"]
    readonly_fields = [field.name for field in SesEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="recipients")
    def recipient_list(self, event: SesEvent) -> str:
        return ", ".join(event.recipients or [])

    @admin.display(description="delivery")
    def delivery_link(self, event: SesEvent) -> str:
        if event.delivery_id is None:
            return "—"
        url = reverse("admin:forecasts_delivery_change", args=[event.delivery_id])
        return format_html('<a href="{}">#{}</a>', url, event.delivery_id)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Which Celery workers are alive: each one writes its own row (see forecasts/sending/heartbeats.py)."""

    list_display = ["hostname", "beat_at", "alive"]
    search_fields = ["hostname"]
    readonly_fields = ["hostname", "beat_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the workers only

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(boolean=True, description="alive")
    def alive(self, heartbeat: WorkerHeartbeat) -> bool:
        return heartbeat_problem(heartbeat.beat_at, timezone.now(), settings.WORKER_HEARTBEAT_SECONDS) is None


class PeriodicTaskJsonForm(PeriodicTaskForm):
    """django-celery-beat's form, its JSON fields read strictly (its own check lets a deeply
    nested value raise RecursionError, a 500, and never looks at the headers)."""

    def _clean_json(self, field):
        try:
            json_input_loads(self.cleaned_data[field] or "{}")
        except JsonInputError as exc:
            raise ValidationError(f"Enter valid JSON: {exc}.", code="invalid") from None
        return self.cleaned_data[field]

    def clean_headers(self):
        return self._clean_json("headers")


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskJsonAdmin(PeriodicTaskAdmin):
    form = PeriodicTaskJsonForm


# The knowledge base and the forecasts are registered by forecasts/admin_forecasts.py.
from forecasts import admin_forecasts  # noqa: E402, F401
