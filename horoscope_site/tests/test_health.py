import pytest

from horoscope_site import health


@pytest.mark.django_db
def test_healthz_is_503_naming_the_worker_when_none_answers(client, monkeypatch):
    monkeypatch.setattr(health.celery_app.control, "ping", lambda timeout: [])
    monkeypatch.setattr(health, "check_broker", lambda: None)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["worker"]["ok"] is False
    assert "no worker answered" in body["checks"]["worker"]["error"]


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_unreachable(client, settings):
    # A Redis URL on a port nothing listens on: the real connection attempt fails.
    from tests.support.servers import free_port

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
    monkeypatch.setattr(health, "check_worker", lambda: None)
    # Without django_db access the cursor raises, as it would with the server gone.
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405
