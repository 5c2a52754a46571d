"""One address for the site in development: what `make run` records, never a process's own PORT."""

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from devtools.run import local_site_url
from devtools.servers import REPO_ROOT, base_child_env
from horoscope_site.config import DEVELOPMENT_SITE_URL, SITE_URL_RECORD, development_site_url

PRINT_SITE_URL = "from django.conf import settings; print(settings.SITE_URL)"


def site_url_in_a_process(**env: str) -> str:
    """SITE_URL as a process started with `env` (development, no SITE_URL of ours) sees it."""
    child_env = base_child_env(DJANGO_ENV="development", **env)
    if "SITE_URL" not in env:
        child_env.pop("SITE_URL", None)
    child_env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", PRINT_SITE_URL],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_development_uses_the_recorded_address_and_tests_never_do(tmp_path):
    assert development_site_url(tmp_path, "development") == DEVELOPMENT_SITE_URL == "http://127.0.0.1:8000"
    (tmp_path / SITE_URL_RECORD).write_text("http://127.0.0.1:9000\n")
    assert development_site_url(tmp_path, "development") == "http://127.0.0.1:9000"
    assert development_site_url(tmp_path, "test") == DEVELOPMENT_SITE_URL
    (tmp_path / SITE_URL_RECORD).write_text("\n")
    assert development_site_url(tmp_path, "development") == DEVELOPMENT_SITE_URL


def test_a_process_given_its_own_port_still_links_to_the_recorded_address(tmp_path):
    # The worker under make run gets PORT=9100 when the web serves on 9000.
    assert site_url_in_a_process(VAR_DIR=str(tmp_path), PORT="9100") == DEVELOPMENT_SITE_URL
    (tmp_path / SITE_URL_RECORD).write_text("http://127.0.0.1:9000\n")
    assert site_url_in_a_process(VAR_DIR=str(tmp_path), PORT="9100") == "http://127.0.0.1:9000"
    explicit = site_url_in_a_process(VAR_DIR=str(tmp_path), SITE_URL="https://tunnel.example.test/")
    assert explicit == "https://tunnel.example.test"


def test_site_prepare_refuses_an_address_that_is_not_a_web_url(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="--site-url must start with http:// or https://"):
        call_command("site_prepare", site_url="127.0.0.1:8000")
    assert not (tmp_path / SITE_URL_RECORD).exists()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),  # noqa: S104 - listening everywhere, browsed locally
        ("localhost", "http://localhost:8000"),
        ("::1", "http://[::1]:8000"),
    ],
)
def test_make_run_names_the_address_a_browser_on_this_machine_opens(host, url):
    assert local_site_url(host, 8000) == url
