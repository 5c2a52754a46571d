"""The portal under load: gunicorn with a production configuration, measured with wrk on loopback.

The site runs as in production (DJANGO_ENV=production, DEBUG off, a dummy secret key, static
files collected and served by whitenoise, PostgreSQL, the Django cache in Redis), except that
SECURE_SSL_REDIRECT is off so plain http works on loopback. Three pages, each after a short
warm-up: the landing page, a sign's page, and the logged-in dashboard (a session made here for
a synthetic reader). `wrk -t2 -c32 -d10s --latency` gives requests/s and the p99 latency; each
page has an aim and is measured three times, and the run with the median p99 counts (all three
are kept). The sign page and the dashboard read what every viewer shares (the reading, the wheel,
the sign page's archive) from the Redis cache after the warm-up, as they do in production once
the first visitor of the day has asked; the session is read from Redis too. The portal's
database is the only one left when this runs: the others are dropped after their benchmark, so
no autovacuum of a million rows runs beside the web server.
BENCH_PORTAL_SECONDS, BENCH_PORTAL_WORKERS, BENCH_PORTAL_WORKER_CLASS (sync or gthread) and
BENCH_PORTAL_THREADS change the run. The default, two sync workers (one per core), gave the best
throughput and the lowest p99 on the 2-core machine, ahead of gthread 2x2, 2x4 and 3x2.
"""

import os
import re
import shutil
import subprocess
import urllib.request
from datetime import timedelta

# Aims per page: (requests/s above, p99 ms below).
TARGETS = {"landing": (500.0, 100.0), "sign": (1000.0, 50.0), "dashboard": (1000.0, 50.0)}
WRK_THREADS = 2
WRK_CONNECTIONS = 32
RUNS = 3


def _settings() -> tuple[int, int, str, int]:
    return (
        int(os.environ.get("BENCH_PORTAL_SECONDS", "10")),
        int(os.environ.get("BENCH_PORTAL_WORKERS", "2")),
        os.environ.get("BENCH_PORTAL_WORKER_CLASS", "sync"),
        int(os.environ.get("BENCH_PORTAL_THREADS", "1")),
    )


def _to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> dict:
    """Requests/s, latency percentiles (ms), and errors from `wrk --latency` output."""
    figures: dict = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for percentile in ("50", "90", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        figures[f"p{percentile}_ms"] = round(_to_ms(*match.groups()), 2) if match else None
    figures["requests"] = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    figures["socket_errors"] = sum(int(n) for n in errors.groups()) if errors else 0
    return figures


def wrk(url: str, seconds: int, headers: dict[str, str] | None = None) -> dict:
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    completed = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(completed.stdout)


def _reader_session() -> str:
    """A confirmed reader with an active subscription, logged in: their session key."""
    from importlib import import_module

    from allauth.account.models import EmailAddress
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils import timezone

    from accounts.models import Subscription, User

    user = User.objects.create_user("reader@example.test", password=None)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    Subscription.objects.create(
        user=user,
        sign="leo",
        time_zone="Europe/Paris",
        status=Subscription.Status.ACTIVE,
        confirmed_at=timezone.now(),
    )
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # loopback http only
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def run() -> dict:
    from benchmarks import support
    from devtools.servers import ManagedProcess, free_port, wait_for

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run scripts/install-bench-deps (make bench-deps)")
    seconds, workers, worker_class, threads = _settings()
    env = support.environment()
    support.use_database("bench_portal")
    from django.conf import settings
    from django.utils import timezone

    today = timezone.now().date()
    support.prepare_forecasts([today + timedelta(days=offset) for offset in range(-6, 2)])
    session_key = _reader_session()

    port = free_port()
    production = support.child_env(
        DJANGO_ENV="production",
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        EMAIL_BACKEND="django_ses.SESBackend",
        ADMIN_REQUIRE_MFA="true",
    )
    subprocess.run(
        [support.sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=support.REPO_ROOT,
        env=production,
        check=True,
    )
    argv = [
        support.sys.executable, "-m", "gunicorn", "horoscope_site.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", worker_class,
        "--threads", str(threads), "--log-level", "warning",
    ]  # fmt: skip
    server = support.track(ManagedProcess(argv, production, env.root / "gunicorn.log").start())
    base = f"http://127.0.0.1:{port}"
    cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}"}

    def up() -> bool:
        try:
            return _get(base + "/")[0] == 200  # /healthz also wants a Celery worker
        except OSError:
            return False

    try:
        try:
            wait_for(up, timeout=60, what="gunicorn")
        except TimeoutError:
            raise RuntimeError(f"gunicorn did not come up:\n{server.log()[-3000:]}") from None
        pages = {"landing": ("/", {}), "sign": ("/signs/leo/", {}), "dashboard": ("/portal/", cookie)}
        status, body = _get(base + "/portal/", cookie)
        if status != 200 or "Leo" not in body:
            raise RuntimeError(f"the dashboard did not answer the logged-in reader ({status})")
        results, runs = {}, {}
        for name, (path, headers) in pages.items():
            wrk(base + path, 2, headers)  # warm-up: each worker loads its code, templates and caches
            # Each page has an aim: measured three times, the run with the median p99 counts.
            runs[name] = [wrk(base + path, seconds, headers) for _ in range(RUNS)]
            results[name] = sorted(runs[name], key=lambda run: run["p99_ms"] or 1e9)[RUNS // 2]
    finally:
        server.stop()
    figures = {
        "gunicorn": f"{workers} {worker_class} workers" + (f" x {threads} threads" if threads > 1 else ""),
        "wrk": f"-t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s",
    }
    for name, result in results.items():
        rps_aim, p99_aim = TARGETS[name]
        figures[f"{name}_requests_per_s"] = round(result["requests_per_s"], 1)
        figures[f"{name}_p50_ms"] = result["p50_ms"]
        figures[f"{name}_p99_ms"] = result["p99_ms"]
        figures[f"{name}_errors"] = result["non_2xx"] + result["socket_errors"]
        figures[f"{name}_runs"] = [
            {"requests_per_s": round(run["requests_per_s"], 1), "p99_ms": run["p99_ms"]} for run in runs[name]
        ]
        figures[f"{name}_target"] = f">{rps_aim:.0f} req/s, p99 <{p99_aim:.0f} ms"
        figures[f"meets_{name}_target"] = (
            result["requests_per_s"] > rps_aim
            and (result["p99_ms"] or 1e9) < p99_aim
            and figures[f"{name}_errors"] == 0
        )
    return figures
