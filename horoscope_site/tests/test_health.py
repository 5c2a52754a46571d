from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from forecasts.sending.heartbeats import heartbeat_record
from horoscope_site import health

NOW = datetime(2025, 3, 9, 6, 0, tzinfo=UTC)


@pytest.fixture
def every_30_s(settings):
    settings.WORKER_HEARTBEAT_SECONDS = 30


def healthz_at(client, now: datetime):
    with time_machine.travel(now, tick=False):
        return client.get("/healthz")


@pytest.mark.django_db
def test_healthz_is_200_while_a_heartbeat_is_within_three_intervals(client, every_30_s):
    heartbeat_record("w1@web-1", NOW)

    response = healthz_at(client, NOW + timedelta(seconds=89))

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "broker": {"ok": True}, "worker": {"ok": True}},
    }


@pytest.mark.django_db
def test_healthz_is_503_naming_how_long_ago_the_last_heartbeat_was(client, every_30_s):
    heartbeat_record("w1@web-1", NOW - timedelta(seconds=400))
    heartbeat_record("w2@web-2", NOW)  # the newest one counts

    response = healthz_at(client, NOW + timedelta(seconds=412))

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"] == {"ok": True}
    assert body["checks"]["worker"] == {"ok": False, "error": "last worker heartbeat 412 s ago"}


@pytest.mark.django_db
def test_healthz_is_503_when_no_worker_has_ever_reported(client, every_30_s):
    response = healthz_at(client, NOW)

    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == {"ok": False, "error": "no worker has ever reported"}


@pytest.mark.django_db
def test_the_heartbeat_interval_setting_sets_how_old_is_too_old(client, settings):
    settings.WORKER_HEARTBEAT_SECONDS = 300
    heartbeat_record("w1@web-1", NOW)

    assert healthz_at(client, NOW + timedelta(seconds=899)).status_code == 200
    assert healthz_at(client, NOW + timedelta(seconds=901)).status_code == 503


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_unreachable(client, settings):
    # A Redis URL on a port nothing listens on: the real connection attempt fails.
    from devtools.servers import free_port

    health.celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    try:
        response = client.get("/healthz")
    finally:
        health.celery_app.conf.broker_url = settings.CELERY_BROKER_URL
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["worker"] == {"ok": False, "error": "broker is down"}


def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    monkeypatch.setattr(health, "check_broker", lambda: None)
    # Without django_db access the cursor raises, as it would with the server gone.
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["worker"] == {"ok": False, "error": "database is down"}


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405
