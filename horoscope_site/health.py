"""/healthz: database and broker reachable, a worker alive, the static files collected.

A worker is alive when its heartbeat in the database is recent (forecasts/sending/heartbeats.py), which
works on every broker: a broadcast ping would need fanout, which SQS does not carry.

The page is public (load balancers call it), so its answer names what is down in plain words and
nothing more: exception text can carry host names, ports and user names. The detail goes to the
log, and to staff who have passed the admin's second-factor gate.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from forecasts.sending.heartbeats import heartbeat_latest, heartbeat_problem
from horoscope_site.celery import app as celery_app
from horoscope_site.security import has_mfa_session

BROKER_TIMEOUT_S = 2.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    public: str  # safe for anyone to read
    detail: str  # for the log and staff


def _failed(public: str, exc: Exception) -> Problem:
    return Problem(public, f"{type(exc).__name__}: {exc}")


def check_database() -> Problem | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failed("the database cannot be reached", exc)
    return None


def check_broker() -> Problem | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
    except Exception as exc:
        return _failed("the task broker cannot be reached", exc)
    return None


def check_worker() -> Problem | None:
    try:
        latest = heartbeat_latest()
    except Exception as exc:
        return _failed("worker heartbeats cannot be read", exc)
    problem = heartbeat_problem(latest, timezone.now(), settings.WORKER_HEARTBEAT_SECONDS)
    return Problem(problem, problem) if problem else None


def check_static_files() -> Problem | None:
    """With hashed static names (DEBUG off), every page needs the manifest collectstatic writes."""
    if not isinstance(staticfiles_storage, ManifestFilesMixin):
        return None
    try:
        manifest = staticfiles_storage.read_manifest()
    except Exception as exc:
        return _failed("the static files manifest cannot be read", exc)
    if not manifest:
        return Problem(
            "the static files are not collected (run manage.py collectstatic)",
            f"no {staticfiles_storage.manifest_name} in {staticfiles_storage.location}",
        )
    return None


def shows_detail(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return False
    return not settings.ADMIN_REQUIRE_MFA or has_mfa_session(request)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when all is up, else 503 naming what is down."""
    database = check_database()
    broker = check_broker()
    # Heartbeats live in the database; and without a broker no worker can receive a task,
    # however recent its heartbeat.
    if database is not None:
        worker = Problem("the database is down", "the database is down")
    elif broker is not None:
        worker = Problem("the broker is down", "the broker is down")
    else:
        worker = check_worker()
    found = {"database": database, "broker": broker, "worker": worker, "static": check_static_files()}
    detail = shows_detail(request)
    checks = {}
    for name, problem in found.items():
        if problem is None:
            checks[name] = {"ok": True}
            continue
        logger.warning("healthz: %s: %s", name, problem.detail)
        checks[name] = {"ok": False, "error": problem.public, **({"detail": problem.detail} if detail else {})}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "down", "checks": checks}, status=200 if healthy else 503)
