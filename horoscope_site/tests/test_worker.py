"""A task goes through the embedded (server-less) broker to a real worker process."""

import environ
import pytest
from celery import Celery

from horoscope_site.config import celery_broker_options
from tests.support.servers import base_child_env, celery_worker

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
