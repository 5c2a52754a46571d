"""DJANGO_ENV=production stops at start, one line per problem, on anything that would silently
lose mail, split rate limits between processes or weaken signatures; every entry point refuses."""

import subprocess
import sys

import pytest

from devtools.servers import REPO_ROOT, base_child_env, free_port
from horoscope_site.production import DEVELOPMENT_SECRET_KEY, production_problems
from tests.support.production import PRODUCTION_ENV, PRODUCTION_REQUIRED_ONLY

CLEARED = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "EMAIL_BACKEND", "APP_SECRETS_ID", "DEBUG")


def child_env(tmp_path, env: dict[str, str]) -> dict[str, str]:
    child = base_child_env(VAR_DIR=str(tmp_path))
    for name in CLEARED:
        child.pop(name, None)
    child.update(env)
    return child


def run(tmp_path, argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=child_env(tmp_path, env), capture_output=True, text=True, timeout=timeout
    )


def config_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("configuration error: ")]


def test_only_the_required_variables_stop_production_naming_each_unsafe_default(tmp_path):
    result = run(tmp_path, [sys.executable, "manage.py", "check"], PRODUCTION_REQUIRED_ONLY)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == config_errors(result.stderr)  # nothing but the problems, one line each
    assert [line.split(": ")[1].split()[0] for line in lines] == [
        "EMAIL_BACKEND",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "REDIS_URL",
    ]
    assert "the local outbox" in lines[0]
    assert "SQLite" in lines[1] and "ALLOW_SQLITE_IN_PRODUCTION=1" in lines[1]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"EMAIL_BACKEND": "forecasts.sending.outbox.OutboxEmailBackend"}, "EMAIL_BACKEND sends mail to the local"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "EMAIL_BACKEND sends mail to the con"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"}, "EMAIL_BACKEND sends mail to files"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}, "EMAIL_BACKEND sends mail to memory"),
        ({"DATABASE_URL": "sqlite:////srv/horoscope/db.sqlite3"}, "DATABASE_URL is SQLite"),
        ({"CELERY_BROKER_URL": "filesystem://localhost/"}, "CELERY_BROKER_URL is a broker on this machine only"),
        ({"CELERY_BROKER_URL": "memory://"}, "CELERY_BROKER_URL is a broker on this machine only"),
        ({"REDIS_URL": ""}, "REDIS_URL is required when DJANGO_ENV=production"),
        ({"DJANGO_SECRET_KEY": DEVELOPMENT_SECRET_KEY}, "DJANGO_SECRET_KEY is the development key"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + "x1y2z3" * 8}, "DJANGO_SECRET_KEY is the development key"),
        ({"DJANGO_SECRET_KEY": "short-but-random-Qx81"}, "DJANGO_SECRET_KEY is too short or too plain"),
        ({"DJANGO_SECRET_KEY": "ab" * 40}, "DJANGO_SECRET_KEY is too short or too plain"),
    ],
)
def test_each_unsafe_setting_alone_stops_production_with_its_line(tmp_path, change, expected):
    result = run(tmp_path, [sys.executable, "manage.py", "check"], {**PRODUCTION_ENV, **change})

    assert result.returncode == 2
    assert config_errors(result.stderr) == result.stderr.strip().splitlines()
    assert len(config_errors(result.stderr)) == 1
    assert expected in result.stderr


def test_a_good_production_configuration_passes_the_deploy_check(tmp_path):
    result = run(
        tmp_path, [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_sqlite_is_allowed_for_a_single_machine_only_when_asked_for_by_name(tmp_path):
    sqlite = {**PRODUCTION_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    refused = run(tmp_path, [sys.executable, "manage.py", "check"], sqlite)
    allowed = run(tmp_path, [sys.executable, "manage.py", "check"], {**sqlite, "ALLOW_SQLITE_IN_PRODUCTION": "1"})

    assert refused.returncode == 2 and "DATABASE_URL is SQLite" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([sys.executable, "manage.py", "runserver", "--noreload", "127.0.0.1:{port}"], id="runserver"),
        pytest.param(
            [sys.executable, "-m", "gunicorn", "horoscope_site.wsgi:application", "--bind", "127.0.0.1:{port}"],
            id="gunicorn",
        ),
        pytest.param([sys.executable, "-m", "celery", "-A", "horoscope_site", "worker", "--pool=solo"], id="worker"),
        pytest.param([sys.executable, "-m", "celery", "-A", "horoscope_site", "beat"], id="beat"),
    ],
)
def test_every_entry_point_refuses_an_unsafe_production(tmp_path, argv):
    port = str(free_port())
    argv = [part.replace("{port}", port) for part in argv]
    unsafe = {**PRODUCTION_ENV, "EMAIL_BACKEND": "forecasts.sending.outbox.OutboxEmailBackend"}

    try:
        result = run(tmp_path, argv, unsafe, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[2]} started on the local outbox in production")

    assert result.returncode != 0
    assert "configuration error: EMAIL_BACKEND sends mail to the local outbox" in result.stderr


def test_the_rules_in_one_place():
    safe = {
        "secret_key": PRODUCTION_REQUIRED_ONLY["DJANGO_SECRET_KEY"],
        "email_backend": "django_ses.SESBackend",
        "database_engine": "django.db.backends.postgresql",
        "broker_url": "sqs://",
        "cache_backend": "django.core.cache.backends.redis.RedisCache",
        "allow_sqlite": False,
    }
    assert production_problems(**safe) == []
    assert production_problems(**{**safe, "database_engine": "django.db.backends.sqlite3", "allow_sqlite": True}) == []
    assert production_problems(**{**safe, "cache_backend": "django.core.cache.backends.dummy.DummyCache"}) != []
    assert production_problems(**{**safe, "email_backend": "django.core.mail.backends.dummy.EmailBackend"}) != []
