"""/healthz: is the database reachable, the broker reachable, and a worker alive?

A worker is alive when its heartbeat in the database is recent (forecasts/sending/heartbeats.py), which
works on every broker: a broadcast ping would need fanout, which SQS does not carry.
"""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from forecasts.sending.heartbeats import heartbeat_latest, heartbeat_problem
from horoscope_site.celery import app as celery_app

BROKER_TIMEOUT_S = 2.0


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_worker() -> str | None:
    try:
        latest = heartbeat_latest()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return heartbeat_problem(latest, timezone.now(), settings.WORKER_HEARTBEAT_SECONDS)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when database, broker and a worker are all up, else 503 naming what is down."""
    database = check_database()
    broker = check_broker()
    # Heartbeats live in the database; and without a broker no worker can receive a task,
    # however recent its heartbeat.
    if database is not None:
        worker = "database is down"
    elif broker is not None:
        worker = "broker is down"
    else:
        worker = check_worker()
    checks = {
        name: {"ok": error is None, **({"error": error} if error else {})}
        for name, error in (("database", database), ("broker", broker), ("worker", worker))
    }
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "down", "checks": checks}, status=200 if healthy else 503)
