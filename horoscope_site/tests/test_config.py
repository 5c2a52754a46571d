"""Bad configuration stops a process with one clear line, not a traceback."""

import subprocess
import sys

import pytest

from devtools.servers import REPO_ROOT, base_child_env


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    child_env = base_child_env(**env)
    if "DATABASE_URL" not in env:
        child_env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://user@host/db"}, "DATABASE_URL has an unsupported scheme 'mysql'"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL has an unsupported scheme"),
        ({"DATABASE_URL": "postgres://user@host:5432/"}, "DATABASE_URL names no database"),
        ({"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is required"),
        ({"DJANGO_ENV": "staging"}, "DJANGO_ENV must be development, production or test"),
        ({"CELERY_BROKER_URL": "amqq://nope"}, "CELERY_BROKER_URL has an unsupported scheme"),
        (
            {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": ""},
            "ALLOWED_HOSTS is required",
        ),
    ],
)
def test_bad_configuration_gives_one_line_and_exit_2(env, expected, tmp_path):
    result = run_manage("check", VAR_DIR=str(tmp_path), **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_production_settings_with_required_values_start(tmp_path):
    from tests.support.production import PRODUCTION_ENV

    result = run_manage("check", VAR_DIR=str(tmp_path), **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
