"""Claim the subscriptions that are due and queue their emails (what beat does every minute).

manage.py dispatch_due [--now 2025-03-09T06:00:00Z] [--sync]
"""

from django.utils import timezone

from forecasts.management.commands._cli import OneLineCommand, parse_instant
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.send import DeliveriesRetryLater, SendReport, deliveries_send

SYNC_BATCH = 100
SYNC_TIME_BUDGET_S = 3600.0


class Command(OneLineCommand):
    help = "Queue the daily emails that are due now (or at --now); --sync sends them here, without a worker."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="ISO 8601 instant to dispatch for (default: now); no offset means UTC")
        parser.add_argument("--sync", action="store_true", help="send in this process instead of enqueueing")

    def handle(self, *args, now: str | None, sync: bool, **options):
        instant = parse_instant(now) if now else timezone.now()
        result = deliveries_dispatch_due(instant, enqueue=not sync)
        self.stdout.write(f"{instant:%Y-%m-%d %H:%M:%S} UTC: {result.summary()}.")
        if not sync or not result.delivery_ids:
            return
        total = SendReport()
        problems = []
        ids = result.delivery_ids
        for start in range(0, len(ids), SYNC_BATCH):
            try:
                report = deliveries_send(
                    ids[start : start + SYNC_BATCH], time_budget=SYNC_TIME_BUDGET_S, continue_in_new_task=False
                )
            except DeliveriesRetryLater as exc:
                problems.append(str(exc))
                continue
            for name, value in report.as_dict().items():
                setattr(total, name, getattr(total, name) + value)
        self.stdout.write(
            f"Sent {total.sent}, failed {total.failed}, unknown {total.unknown}, cancelled {total.cancelled}, "
            f"waiting for a forecast {total.waiting_for_forecast}, put back in the queue {total.requeued}."
        )
        for problem in problems:
            self.stderr.write(f"Left in the queue after an error: {problem}")
