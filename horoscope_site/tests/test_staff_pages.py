"""Staff pages outside the admin have the admin's second-factor gate, and the local outbox is
never routed in production."""

import subprocess
import sys

import pytest
from django.core.mail import EmailMessage
from django.test import Client

from accounts.tests.factories import UserFactory
from devtools.servers import REPO_ROOT
from forecasts.sending.outbox import outbox_messages
from horoscope_site.tests.test_production_refusals import child_env
from tests.support.production import PRODUCTION_ENV

# Where the gate itself sends staff: it tells them how to get a second factor, and shows nothing else.
GATE_PAGES = {"staff:home"}
ROUTED = "from django.urls import get_resolver as r; print(any(str(p.pattern) == 'outbox/' for p in r().url_patterns))"


def outbox_routed(tmp_path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", ROUTED],
        cwd=REPO_ROOT,
        env=child_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_outbox_is_never_routed_in_production(tmp_path):
    assert outbox_routed(tmp_path, PRODUCTION_ENV) == "False"
    assert outbox_routed(tmp_path, {"DJANGO_ENV": "development"}) == "True"


@pytest.fixture
def staff_site(settings, tmp_path):
    """Not DEBUG, the outbox in use with one message in it, and the second factor required."""
    settings.DEBUG = False
    settings.ADMIN_REQUIRE_MFA = True
    settings.EMAIL_BACKEND = "forecasts.sending.outbox.OutboxEmailBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox"
    EmailMessage("Your reading", "Plain words", "from@example.test", ["reader@example.test"]).send()
    [message] = outbox_messages()
    return message.name


@pytest.mark.django_db
def test_staff_signed_in_with_a_password_only_are_stopped_before_the_outbox(staff_site):
    client = Client()
    client.force_login(UserFactory(email="keeper@example.test", is_staff=True))

    for path in ("/outbox/", f"/outbox/{staff_site}/", f"/outbox/{staff_site}/html"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/staff/?next="), path


@pytest.mark.django_db
def test_no_page_outside_the_admin_opens_for_a_staff_password_alone_that_a_reader_cannot_open(staff_site):
    from tests.test_hostile_input import PAGE_ROUTES, route_path

    staff = Client()
    staff.force_login(UserFactory(email="keeper@example.test", is_staff=True, is_superuser=True))
    reader = Client()
    reader.force_login(UserFactory(email="reader@example.test"))
    ungated = []
    checked = 0
    for route in PAGE_ROUTES:
        if route.name.startswith("admin:") or route.name in GATE_PAGES:
            continue
        path = route_path(route, {"name": staff_site} if "name" in route.params else None)
        as_staff, as_reader = staff.get(path).status_code, reader.get(path).status_code
        checked += 1
        if as_staff == 200 and as_reader != 200:
            ungated.append(path)
    assert checked > 30
    assert ungated == []
