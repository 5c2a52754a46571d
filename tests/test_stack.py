"""`make run` on its embedded defaults brings up web, worker and beat; Ctrl-C stops them all."""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from devtools.servers import REPO_ROOT, base_child_env, free_port, wait_for

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def test_make_run_serves_the_site_and_reports_healthy(tmp_path, artifacts_dir):
    port = free_port()
    env = base_child_env(PORT=str(port), VAR_DIR=str(tmp_path / "var"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_BACKEND", "REDIS_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    env["DJANGO_ENV"] = "development"
    log_path = artifacts_dir / "make-run.log"
    with open(log_path, "wb") as log:
        stack = subprocess.Popen(
            ["make", "run"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            status, body = get(f"{base}/healthz")
            return (status, json.loads(body)) if status == 200 else None

        status, health = wait_for(healthy, timeout=180, interval=1, what="/healthz to answer 200")
        assert health == {
            "status": "ok",
            "checks": {"database": {"ok": True}, "broker": {"ok": True}, "worker": {"ok": True}},
        }
        status, body = get(f"{base}/")
        assert status == 200
        assert b"Daily Horoscope" in body
        assert (tmp_path / "var" / "db.sqlite3").exists()
        output = log_path.read_text()
        assert f"http://127.0.0.1:{port}/" in output
        assert "outbox" in output
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # what one Ctrl-C in the terminal does
        stack.wait(timeout=60)
    # Every process of the stack is gone after the one Ctrl-C.
    wait_for(lambda: not _group_alive(stack.pid), timeout=30, what="the stack's processes to exit")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
