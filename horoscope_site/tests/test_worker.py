"""Real worker processes: a task round trip on the embedded broker, and the heartbeat /healthz reads."""

import subprocess
import sys
from dataclasses import dataclass

import environ
import pytest
from celery import Celery

from devtools.servers import REPO_ROOT, base_child_env, celery_worker, database_url, moto_server, wait_for
from forecasts.models import WorkerHeartbeat
from horoscope_site.celery import app as celery_app
from horoscope_site.config import celery_broker_options
from tests.support.workers import tasks_sent_to

pytestmark = pytest.mark.slow


def test_task_round_trip_through_embedded_broker(tmp_path):
    env = base_child_env(
        VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL="filesystem://localhost/",
        CELERY_RESULT_BACKEND=f"file://{tmp_path}/results",
    )
    (tmp_path / "results").mkdir()
    worker = celery_worker(env, tmp_path / "worker.log", concurrency=1)
    client = Celery(
        broker="filesystem://localhost/",
        backend=f"file://{tmp_path}/results",
    )
    client.conf.broker_transport_options = celery_broker_options("filesystem://", tmp_path / "broker", environ.Env())
    try:
        result = client.send_task("horoscope_site.ping_task", args=["the Moon is waxing"])
        assert result.get(timeout=60) == "the Moon is waxing"
    finally:
        worker.stop()
    assert "ready" in worker.log()


@dataclass(frozen=True)
class Broker:
    url: str
    options: dict
    answers_ping: bool  # carries Celery's broadcast (fanout) messages


@pytest.fixture(scope="module")
def moto_sqs():
    with moto_server() as url:
        yield url.replace("http://", "sqs://testing:testing@")


@pytest.fixture(params=["filesystem", "redis", "sqs"])
def broker(request, tmp_path) -> Broker:
    """The broker of the worker and of this process: its folders under tmp_path when it has any."""
    if request.param == "filesystem":
        url = "filesystem://localhost/"
    elif request.param == "redis":
        redis_proc = request.getfixturevalue("redis_proc")
        url = f"redis://{redis_proc.host}:{redis_proc.port}/5"
    else:
        url = request.getfixturevalue("moto_sqs")
    options = celery_broker_options(url, tmp_path / "broker", environ.Env())
    return Broker(url, options, answers_ping=request.param != "sqs")


@pytest.mark.django_db(transaction=True)
def test_a_worker_reports_its_heartbeat_and_healthz_counts_it_on_every_broker(broker, tmp_path, client, settings):
    settings.WORKER_HEARTBEAT_SECONDS = 1
    env = base_child_env(
        VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL=broker.url,
        DATABASE_URL=database_url(settings.DATABASES["default"]),
        WORKER_HEARTBEAT_SECONDS="1",
    )
    worker = celery_worker(env, tmp_path / "worker.log", name="hb", concurrency=1)
    try:
        wait_for(lambda: "ready" in worker.log(), timeout=60, what="the worker to start")
        # Written as the worker starts: there by the time it says it is ready.
        first = WorkerHeartbeat.objects.get(hostname__startswith="hb@").beat_at
        wait_for(
            lambda: WorkerHeartbeat.objects.get(hostname__startswith="hb@").beat_at > first,
            timeout=10,
            what="the next heartbeat",
        )
        with tasks_sent_to(broker.url, broker.options):
            response = client.get("/healthz")
            pinged = celery_app.control.ping(timeout=2)
    finally:
        worker.stop()

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["worker"] == {"ok": True}
    # What /healthz asked before: SQS carries no broadcast, so a ping is never answered there.
    assert bool(pinged) is broker.answers_ping
    assert "heartbeat not recorded" not in worker.log()


def test_the_main_process_loads_the_send_path_before_the_pool_forks():
    """What each child would otherwise load on its first batch (half a second of it)."""
    probe = """
import sys
import django
django.setup()
from celery import signals
from django.template import engines
from django.urls import get_resolver
from horoscope_site.celery import app
assert "boto3" not in sys.modules and "redis" not in sys.modules and not get_resolver()._populated
signals.worker_init.send(sender=None)
cached = engines["django"].engine.template_loaders[0].get_template_cache
print(sorted({"boto3", "django_ses", "redis"} & set(sys.modules)), get_resolver()._populated)
print(sorted(name for name in cached if name.startswith("emails/daily")))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env=base_child_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "['boto3', 'django_ses', 'redis'] True",
        "['emails/daily.html', 'emails/daily.txt', 'emails/daily_subject.txt']",
    ]
