"""/healthz: is the database reachable, the broker reachable, and a worker answering?"""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from horoscope_site.celery import app as celery_app

BROKER_TIMEOUT_S = 2.0
WORKER_PING_TIMEOUT_S = 1.5


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
        replies = celery_app.control.ping(timeout=WORKER_PING_TIMEOUT_S)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if not replies:
        return f"no worker answered a ping within {WORKER_PING_TIMEOUT_S} s"
    return None


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when database, broker and a worker are all up, else 503 naming what is down."""
    database = check_database()
    broker = check_broker()
    # Without a broker no worker can answer; say so instead of waiting for a ping.
    worker = check_worker() if broker is None else "broker is down"
    checks = {
        name: {"ok": error is None, **({"error": error} if error else {})}
        for name, error in (("database", database), ("broker", broker), ("worker", worker))
    }
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "down", "checks": checks}, status=200 if healthy else 503)
