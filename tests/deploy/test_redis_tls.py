"""The REDIS_URL deploy/entrypoint.py builds for ElastiCache (rediss://, AUTH token) works with the
installed redis client, through production settings: a real Redis server that speaks TLS only
and asks for the token, as ElastiCache with encryption in transit does."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.servers import REPO_ROOT, base_child_env, free_port, wait_for
from tests.support import production

TOKEN = "Abc123tokenFromSecretsManager0123456789abcdefghijklmnopqrstuvwx"
# Production as the containers run it: SQS for tasks, and this test's own REDIS_URL.
PRODUCTION_ENV = {**production.PRODUCTION_ENV, "CELERY_BROKER_URL": "sqs://"}
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.core.cache import cache
from forecasts.sending.ratelimit import send_rate_limiter

cache.set("deploy-probe", "through TLS", 30)
limiter = send_rate_limiter()
print(json.dumps({
    "url": settings.REDIS_URL.replace(settings.REDIS_URL.split("@")[0], "rediss://:TOKEN"),
    "cached": cache.get("deploy-probe"),
    "limiter": type(limiter).__name__,
    "taken": limiter.acquire(10, count=3).taken,
}))
"""


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """redis-server with TLS only (no plain port) and requirepass; the certificate's CA file."""
    folder = tmp_path_factory.mktemp("redis-tls")
    key, certificate = folder / "key.pem", folder / "certificate.pem"
    make_certificate = [
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
        *("-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(certificate)),
    ]
    subprocess.run(make_certificate, check=True, capture_output=True, timeout=60)
    port = free_port()
    server = subprocess.Popen(
        [
            *("redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(certificate), "--tls-key-file", str(key), "--tls-ca-cert-file", str(certificate)),
            *("--tls-auth-clients", "no", "--requirepass", TOKEN),
            *("--save", "", "--appendonly", "no", "--dir", str(folder)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _accepts(port), timeout=20, what="redis-server with TLS")
        yield port, certificate
    finally:
        server.terminate()
        server.wait(timeout=20)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_through_the_entrypoint(port: int, trusted: Path | None, tmp_path) -> subprocess.CompletedProcess:
    env = base_child_env(
        **PRODUCTION_ENV,
        REDIS_HOST="localhost",  # the name on the certificate, as ElastiCache's endpoint is on its own
        REDIS_PORT=str(port),
        REDIS_AUTH_TOKEN=TOKEN,
        VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    for name in ("REDIS_URL", "APP_SECRETS_ID", "DEBUG", "SEND_RATE_LIMITER", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        env.pop(name, None)
    if trusted:
        env["SSL_CERT_FILE"] = str(trusted)  # the image trusts Amazon's roots the same way: the default store
    return subprocess.run(
        [sys.executable, "-m", "deploy.entrypoint", sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cache_and_send_rate_work_over_tls_with_the_token(tls_redis, tmp_path):
    port, certificate = tls_redis
    result = run_through_the_entrypoint(port, certificate, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "url": f"rediss://:TOKEN@localhost:{port}/0",
        "cached": "through TLS",
        "limiter": "RedisRateLimiter",
        "taken": 3,
    }


def test_a_certificate_nobody_trusts_is_refused(tls_redis, tmp_path):
    port, _certificate = tls_redis
    result = run_through_the_entrypoint(port, None, tmp_path)
    assert result.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr or "certificate verify failed" in result.stderr
