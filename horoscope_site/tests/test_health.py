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
        "checks": {"database": {"ok": True}, "broker": {"ok": True}, "worker": {"ok": True}, "static": {"ok": True}},
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
    assert checks["broker"]["error"] == "the task broker cannot be reached"
    assert checks["worker"] == {"ok": False, "error": "the broker is down"}


def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    monkeypatch.setattr(health, "check_broker", lambda: None)
    # Without django_db access the cursor raises, as it would with the server gone.
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["database"]["error"] == "the database cannot be reached"
    assert checks["worker"] == {"ok": False, "error": "the database is down"}


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405


# --- The public answer names what is down; the detail is for the log and staff ---


@pytest.fixture
def broker_down(settings):
    from devtools.servers import free_port

    port = free_port()
    health.celery_app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    yield port
    health.celery_app.conf.broker_url = settings.CELERY_BROKER_URL


@pytest.mark.django_db
def test_the_public_answer_carries_no_address_port_or_exception_text(client, broker_down, caplog):
    with caplog.at_level("WARNING", logger="horoscope_site.health"):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.content.decode()
    assert "127.0.0.1" not in body and str(broker_down) not in body
    assert "Error" not in body and "detail" not in body
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "the task broker cannot be reached"}
    # The operator still learns what happened, from the log.
    [logged] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("healthz: broker:")]
    assert str(broker_down) in logged


@pytest.mark.django_db
def test_staff_past_the_second_factor_gate_see_the_detail(client, broker_down, settings):
    from accounts.tests.factories import UserFactory

    settings.ADMIN_REQUIRE_MFA = False  # this session counts as past the gate
    client.force_login(UserFactory(email="keeper@example.test", is_staff=True))

    broker = client.get("/healthz").json()["checks"]["broker"]

    assert broker["error"] == "the task broker cannot be reached"
    assert str(broker_down) in broker["detail"]
    settings.ADMIN_REQUIRE_MFA = True  # a password-only staff session gets the public answer
    assert "detail" not in client.get("/healthz").json()["checks"]["broker"]


@pytest.fixture
def hashed_static_names(settings, tmp_path):
    """Static files as in production (DEBUG off): hashed names from the manifest in STATIC_ROOT."""
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    settings.STATIC_ROOT.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    return settings.STATIC_ROOT


@pytest.mark.django_db
def test_healthz_is_503_until_collectstatic_has_written_the_manifest(client, every_30_s, hashed_static_names):
    from django.core.management import call_command

    heartbeat_record("w1@web-1", NOW)
    missing = healthz_at(client, NOW)

    assert missing.status_code == 503
    assert missing.json()["checks"]["static"] == {
        "ok": False,
        "error": "the static files are not collected (run manage.py collectstatic)",
    }
    assert str(hashed_static_names) not in missing.content.decode()

    call_command("collectstatic", "--noinput", verbosity=0)

    collected = healthz_at(client, NOW)
    assert collected.status_code == 200, collected.json()
    assert collected.json()["checks"]["static"] == {"ok": True}
