"""The container image (deploy/Dockerfile), its entrypoint and the production environment reference."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy import entrypoint, services
from devtools.servers import REPO_ROOT, base_child_env
from tests.support.production import PRODUCTION_ENV

DOCKERFILE = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
ENV_REFERENCE = REPO_ROOT / "deploy" / "production.env.example"


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


# --- the Dockerfile ---


def test_image_is_slim_python_311_and_runs_as_a_named_user():
    assert instructions("FROM") == ["python:3.11-slim"]
    (user,) = instructions("USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert "useradd" in " ".join(instructions("RUN"))


def test_image_default_command_is_the_web_service_and_runs_through_the_entrypoint():
    (command,) = instructions("CMD")
    assert json.loads(command) == services.WEB_COMMAND
    (entry,) = instructions("ENTRYPOINT")
    assert json.loads(entry) == ["python", "-m", "deploy.entrypoint"]
    assert instructions("STOPSIGNAL") == ["SIGTERM"]


def test_image_installs_the_debian_packages_the_site_itself_needs():
    # The packages `make run` installs (scripts/install-system-deps --runtime): the part of the
    # script before the test-only ones.
    script = (REPO_ROOT / "scripts" / "install-system-deps").read_text()
    runtime_part = script.split("if ! $runtime_only", 1)[0]
    runtime_packages = set(re.findall(r"missing\+=\(([^)]+)\)", runtime_part))
    assert runtime_packages == {"libcairo2", "fonts-dejavu-core"}
    apt_steps = [run for run in instructions("RUN") if "apt-get install" in run]
    assert apt_steps and all(package in apt_steps[0].split() for package in runtime_packages)


def test_docker_context_leaves_out_local_state():
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", ".env", "deploy/cdk.out"} <= set(ignored)


def image_environment() -> dict[str, str]:
    """The Dockerfile's ENV, as a build step sees it."""
    env = {}
    for line in instructions("ENV"):
        for pair in shlex.split(line):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def test_static_files_are_collected_at_build_with_the_manifest(tmp_path):
    (build_step,) = [run for run in instructions("RUN") if "collectstatic" in run]
    static_root = tmp_path / "staticfiles"
    # The build's environment alone (none of this machine's DATABASE_URL, REDIS_URL...), and
    # DJANGO_ENV=production around it as in the running containers: the step pins its own mode.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **image_environment(),
        "DJANGO_ENV": "production",
        "STATIC_ROOT": str(static_root),
        "VAR_DIR": str(tmp_path / "var"),
    }
    command = build_step.replace("python ", f"{shlex.quote(sys.executable)} ", 1)
    result = subprocess.run(command, shell=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)  # noqa: S602
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((static_root / "staticfiles.json").read_text())
    assert manifest["paths"], "the hashed manifest production serves from"


STATIC_PROBE = (
    "import json; from django.conf import settings; print(json.dumps([settings.STORAGES['staticfiles'], "
    "settings.STATIC_URL, [str(d) for d in settings.STATICFILES_DIRS], settings.INSTALLED_APPS]))"
)


def test_the_build_collects_with_the_static_settings_production_serves(tmp_path):
    (build_step,) = [run for run in instructions("RUN") if "collectstatic" in run]
    build_env = dict(pair.split("=", 1) for pair in shlex.split(build_step) if "=" in pair)
    assert build_env == {"DJANGO_ENV": "development", "DEBUG": "false"}
    production = {**PRODUCTION_ENV, "CELERY_BROKER_URL": "sqs://", "REDIS_URL": "rediss://:token@cache.internal:6379/0"}
    seen = []
    for mode in (build_env, production):
        env = base_child_env(
            **{**image_environment(), "STATIC_ROOT": str(tmp_path / "static"), "VAR_DIR": str(tmp_path), **mode}
        )
        for name in ("APP_SECRETS_ID", "DEBUG", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMAIL_BACKEND"):
            if name not in mode:  # this machine's own, if any
                env.pop(name, None)
        result = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {STATIC_PROBE}"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        seen.append(json.loads(result.stdout.strip().splitlines()[-1]))
    build, served = seen
    assert build == served
    assert build[0]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"


# --- the entrypoint ---


def test_database_url_is_joined_and_quoted():
    env = {
        "DATABASE_HOST": "db.internal",
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "horoscope",
        "DATABASE_USER": "horoscope",
        "DATABASE_PASSWORD": "p@ss:w/rd",
    }
    assert entrypoint.database_url(env) == (
        "postgres://horoscope:p%40ss%3Aw%2Frd@db.internal:5432/horoscope?sslmode=require"
    )
    assert entrypoint.database_url({}) is None
    with pytest.raises(entrypoint.EntrypointError, match="DATABASE_PASSWORD"):
        entrypoint.database_url({**env, "DATABASE_PASSWORD": ""})


def test_redis_url_is_tls_with_the_quoted_token():
    env = {"REDIS_HOST": "master.horoscope-cache.abc123.use1.cache.amazonaws.com", "REDIS_PORT": "6379"}
    assert entrypoint.redis_url({**env, "REDIS_AUTH_TOKEN": "t0k/en@x"}) == (
        "rediss://:t0k%2Fen%40x@master.horoscope-cache.abc123.use1.cache.amazonaws.com:6379/0"
    )
    assert entrypoint.redis_url({}) is None
    with pytest.raises(entrypoint.EntrypointError, match="REDIS_AUTH_TOKEN"):
        entrypoint.redis_url(env)


def test_the_installed_redis_client_speaks_tls_with_the_token_to_the_url_the_entrypoint_makes():
    import ssl

    import redis

    url = entrypoint.redis_url({"REDIS_HOST": "cache.internal", "REDIS_PORT": "6379", "REDIS_AUTH_TOKEN": "t0k/en@x"})
    connection = redis.ConnectionPool.from_url(url).make_connection()
    assert isinstance(connection, redis.SSLConnection)
    assert (connection.host, connection.port, connection.password) == ("cache.internal", 6379, "t0k/en@x")
    assert connection.cert_reqs == ssl.CERT_REQUIRED and connection.check_hostname


class Metadata(BaseHTTPRequestHandler):
    """ECS's task metadata endpoint (v4), which has no local stand-in: the container's own record."""

    body = json.dumps({"Name": "web", "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.4.27"]}]})

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def metadata_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v4/container"
    finally:
        server.shutdown()
        server.server_close()


def test_entrypoint_completes_the_environment_and_becomes_the_command(metadata_url):
    env = base_child_env(
        ALLOWED_HOSTS="horoscope.example.com",
        ECS_CONTAINER_METADATA_URI_V4=metadata_url,
        DATABASE_HOST="db.internal",
        DATABASE_NAME="horoscope",
        DATABASE_USER="horoscope",
        DATABASE_PASSWORD="secret-word",
        REDIS_HOST="cache.internal",
        REDIS_PORT="6379",
        REDIS_AUTH_TOKEN="token-word",
    )
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    probe = (
        "import os, json; "
        "print(json.dumps([os.getpid(), *(os.environ[n] for n in ('ALLOWED_HOSTS', 'DATABASE_URL', 'REDIS_URL'))]))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import os, sys; print(os.getpid()); sys.stdout.flush(); "
            f"os.execv(sys.executable, [sys.executable, '-m', 'deploy.entrypoint', sys.executable, '-c', {probe!r}])",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    first, last = result.stdout.strip().splitlines()
    pid, hosts, url, redis_url = json.loads(last)
    assert pid == int(first)  # the command replaced the entrypoint: the stop signal reaches it
    assert hosts == "horoscope.example.com,10.0.4.27"
    assert url == "postgres://horoscope:secret-word@db.internal:5432/horoscope?sslmode=require"
    assert redis_url == "rediss://:token-word@cache.internal:6379/0"


def test_entrypoint_says_what_is_missing_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "deploy.entrypoint", "true"],
        cwd=REPO_ROOT,
        env=base_child_env(DATABASE_HOST="db.internal", DATABASE_URL=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "entrypoint: DATABASE_HOST is set but not DATABASE_USER, DATABASE_PASSWORD, DATABASE_NAME"
    ]


# --- the production environment reference ---


def reference() -> dict[str, str]:
    pairs = {}
    for line in ENV_REFERENCE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def test_env_reference_lists_exactly_what_the_containers_get(synthesized):
    definitions = synthesized.resources("AWS::ECS::TaskDefinition").values()
    for definition in definitions:
        (container,) = definition["Properties"]["ContainerDefinitions"]
        given = {e["Name"] for e in container["Environment"]} | {s["Name"] for s in container["Secrets"]}
        assert given == set(reference()), container["Name"]


def test_env_reference_names_are_the_settings_own_and_its_outputs_exist(synthesized):
    documented = {
        line.split("=", 1)[0] for line in (REPO_ROOT / ".env.example").read_text().splitlines() if "=" in line
    }
    made_by_the_entrypoint = {
        *("DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD"),
        *("REDIS_HOST", "REDIS_PORT", "REDIS_AUTH_TOKEN"),
    }
    assert set(reference()) - made_by_the_entrypoint <= documented
    outputs = set(synthesized.template["Outputs"])
    for value in reference().values():
        for name in re.findall(r"<(\w+)>", value):
            assert name in outputs, name
    for name in re.findall(r"<(\w+)>", ENV_REFERENCE.read_text()):
        assert name in outputs, name
