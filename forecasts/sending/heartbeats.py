"""Worker heartbeats: each Celery worker records that it is alive; /healthz reads the newest.

A broadcast ping (`celery_app.control.ping`) needs a fanout exchange, which SQS does not
carry, and it makes the web process consume from the broker. A row per worker in the
database works on every broker and deployment, and the web reads it without the broker.
The worker writes it from a bootstep in forecasts/sending/worker.py every
WORKER_HEARTBEAT_SECONDS.

Public functions: `heartbeat_record`, `heartbeats_forget_gone`, `heartbeat_latest`,
`heartbeat_problem`.
"""

from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from forecasts.models import WorkerHeartbeat

# A worker counts as alive while its last beat is younger than this many intervals, so one
# late or missed beat (a busy event loop, a database hiccup) does not make /healthz fail.
ALIVE_FOR_BEATS = 3
# Hostnames change with every container or machine: rows of workers silent this long are dropped.
FORGET_AFTER = timedelta(days=7)


def heartbeat_record(hostname: str, now: datetime | None = None, pids: list[int] | None = None) -> None:
    """Say that worker `hostname`, with these processes, is alive now: one INSERT ... ON CONFLICT DO UPDATE."""
    WorkerHeartbeat.objects.bulk_create(
        [WorkerHeartbeat(hostname=hostname, beat_at=now or timezone.now(), pids=sorted(pids or []))],
        update_conflicts=True,
        unique_fields=["hostname"],
        update_fields=["beat_at", "pids"],
    )


def heartbeats_forget_gone(now: datetime | None = None) -> int:
    """Delete the rows of workers silent for FORGET_AFTER; returns how many went."""
    cutoff = (now or timezone.now()) - FORGET_AFTER
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=cutoff).delete()
    return deleted


def heartbeat_latest() -> datetime | None:
    """The newest heartbeat of any worker, or None if none is recorded."""
    return WorkerHeartbeat.objects.aggregate(latest=Max("beat_at"))["latest"]


def heartbeat_problem(latest: datetime | None, now: datetime, interval_s: float) -> str | None:
    """Why no worker counts as alive given the newest heartbeat, or None when one does."""
    if latest is None:
        return "no worker has ever reported"
    age_s = (now - latest).total_seconds()
    if age_s > ALIVE_FOR_BEATS * interval_s:
        return f"last worker heartbeat {age_s:.0f} s ago"
    return None
