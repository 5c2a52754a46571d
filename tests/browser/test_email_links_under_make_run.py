"""Every link in the emails a reader gets opens the running site, with the processes laid out as
`make run` lays them out.

The stack is `make run`'s own script (devtools/run.py): the Procfile's web, worker and beat, each
with its own PORT as honcho gives it (web 8000 + n, worker + 100, beat + 200), on the embedded
defaults (SQLite, file-system broker, the outbox) in a throwaway data folder. A reader signs up in
Chromium from the address the banner prints, the real worker sends the daily email, and each link
in it is opened in the reader's browser: it must be on the banner's host and port, answer, and
keep the reader logged in (cookies are per host: `localhost` would not be `127.0.0.1`).
"""

import os
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from accounts.tests.factories import PASSWORD
from devtools.servers import REPO_ROOT, base_child_env, free_port, wait_for
from forecasts.sending.outbox import outbox_messages, read_message
from tests.support.browser import DESKTOP

pytestmark = pytest.mark.slow

EMAIL = "first-morning@example.test"
READER_ZONE = "Europe/London"  # the browser's, suggested at sign-up
BANNER = re.compile(r"Daily Horoscope is running: (http://\S+?)/?$", re.M)
NEXT_SEND_AT = (
    "from accounts.models import Subscription; "
    "print(Subscription.objects.get(user__email='{email}').next_send_at.isoformat())"
)
URL_IN_TEXT = re.compile(r"https?://[^\s<>\"')]+")


class Stack:
    """`make run`'s script in a throwaway data folder; stopped as one Ctrl-C stops it."""

    def __init__(self, var_dir: Path, log_path: Path) -> None:
        self.var_dir = var_dir
        self.port = free_port()
        self.log_path = log_path
        env = base_child_env(PORT=str(self.port), VAR_DIR=str(var_dir), DJANGO_ENV="development")
        for name in ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_BACKEND", "REDIS_URL", "SITE_URL"):
            env.pop(name, None)
        self.env = env
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(REPO_ROOT / ".venv/bin/python"), "-m", "devtools.run"],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def banner_url(self) -> str:
        def printed():
            if self.process.poll() is not None:
                raise AssertionError(f"make run's script ended early:\n{self.output[-3000:]}")
            return BANNER.search(self.output)

        return wait_for(printed, timeout=240, interval=0.5, what="the banner").group(1)

    def command(self, *args: str, **env: str) -> str:
        """A manage.py command run by hand in another terminal: no PORT or SITE_URL of make run's."""
        child_env = {key: value for key, value in self.env.items() if key not in {"PORT", "HOST"}}
        result = subprocess.run(
            [str(REPO_ROOT / ".venv/bin/python"), "manage.py", *args],
            cwd=REPO_ROOT,
            env={**child_env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        """After a failure only: the script and every process of the stack, by process id."""
        if self.process.poll() is None:
            self.ctrl_c()


def process_env(var_dir: Path, command_part: str) -> dict[str, str]:
    """The environment of the stack's process whose command line contains `command_part`."""
    marker = f"VAR_DIR={var_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in environ and command_part in cmdline and not cmdline.startswith("/bin/sh"):
            return dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    raise AssertionError(f"no process of the stack runs {command_part!r}")


class Links(HTMLParser):
    """Every href and src in an HTML part."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "href" and value:
                self.hrefs.append(value)
            elif name == "src" and value:
                self.sources.append(value)


def email_links(message) -> tuple[list[str], list[str]]:
    """(links a reader opens, images the client loads) in the email, headers and both parts."""
    parser = Links()
    html = message.get_body(preferencelist=("html",))  # allauth's own emails are text only
    if html is not None:
        parser.feed(html.get_content())
    text = message.get_body(preferencelist=("plain",)).get_content()
    header = str(message.get("List-Unsubscribe", "")).strip().strip("<>")
    links = [*parser.hrefs, *URL_IN_TEXT.findall(text), *([header] if header else [])]
    images = [src for src in parser.sources if not src.startswith(("cid:", "data:"))]  # in the email
    return list(dict.fromkeys(links)), list(dict.fromkeys(images))


def wait_for_email(outbox: Path, subject_part: str, timeout: float):
    def arrived():
        for path in outbox_messages(outbox):
            message = read_message(path)
            if subject_part in str(message["Subject"]):
                return message
        return None

    return wait_for(arrived, timeout=timeout, interval=0.5, what=f"an email about {subject_part!r}")


def assert_opens_the_running_site(page, link: str, site_url: str, logged_in: bool) -> None:
    """Open `link` in the reader's browser: on the site the banner named, answering, and logged in."""
    if link.startswith("mailto:"):
        return
    assert link.startswith(f"{site_url}/"), f"{link} is not on the running site {site_url}"
    response = page.goto(link)
    assert response is not None and response.ok, f"{link} answered {response and response.status}"
    assert page.url.startswith(f"{site_url}/"), f"{link} led to {page.url}"
    assert "/accounts/login/" not in page.url, f"{link} asked the reader to log in again"
    if logged_in:
        assert page.get_by_role("button", name="Log out").is_visible(), f"{link}: the reader is not logged in"


def test_every_link_in_the_workers_email_opens_the_running_site(tmp_path, chromium, artifacts_dir):
    var_dir = tmp_path / "var"
    stack = Stack(var_dir, artifacts_dir / "make-run-email-links.log")
    context = chromium.new_context(viewport=DESKTOP, timezone_id=READER_ZONE)
    context.set_default_timeout(15_000)
    try:
        site_url = stack.banner_url()
        assert site_url == f"http://127.0.0.1:{stack.port}"
        # make run's layout: the worker and beat get their own PORT, as honcho gives them.
        assert process_env(var_dir, "worker")["PORT"] == str(stack.port + 100)
        assert process_env(var_dir, "beat")["PORT"] == str(stack.port + 200)
        # A command run by hand, even with a PORT of its own, links to the same address.
        probe = "from django.conf import settings; print(settings.SITE_URL)"
        assert stack.command("shell", "--no-imports", "-c", probe, PORT="9999").strip() == site_url

        # Sign up from the banner's address, then confirm from the email the web sent.
        page = context.new_page()
        page.goto(f"{site_url}/accounts/signup/")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password:", exact=True).fill(PASSWORD)
        page.get_by_label("Password (again)").fill(PASSWORD)
        page.get_by_label("Your sun sign").select_option("aries")
        page.get_by_role("button", name="Sign up").click()
        page.wait_for_url("**/accounts/confirm-email/")
        confirmation = wait_for_email(var_dir / "outbox", "Confirm your address", timeout=30)
        links, _ = email_links(confirmation)
        [confirm_link] = [link for link in links if "/accounts/confirm-email/" in link]
        for link in links:
            assert_opens_the_running_site(page, link, site_url, logged_in=False)
        page.goto(confirm_link)
        if not page.url.endswith("/portal/"):
            page.get_by_role("button", name=re.compile("confirm", re.I)).click()
        page.wait_for_url(f"{site_url}/portal/")
        assert page.get_by_role("button", name="Log out").is_visible()

        # The daily send: queued by a command run by hand just past the reader's delivery time,
        # sent by the stack's own worker (the command only queues it).
        next_send = stack.command("shell", "--no-imports", "-c", NEXT_SEND_AT.format(email=EMAIL)).strip()
        dispatch_at = (datetime.fromisoformat(next_send) + timedelta(minutes=1)).isoformat()
        started = time.monotonic()
        queued = stack.command("dispatch_due", "--now", dispatch_at)
        assert "queued 1 deliveries" in queued, queued
        daily = wait_for_email(var_dir / "outbox", "Aries", timeout=120)
        sent_after_s = time.monotonic() - started

        links, images = email_links(daily)
        site_links = [link for link in links if link.startswith("http")]
        assert len(site_links) >= 4, links  # web version, glossary, preferences, unsubscribe
        for image in images:
            response = context.request.get(image)
            assert image.startswith(f"{site_url}/") and response.ok, f"image {image}: {response.status}"
        # Unsubscribe last: its page asks before it changes anything, so the reader stays subscribed
        # and logged in while the other links are opened.
        for link in sorted(links, key=lambda link: "/unsubscribe/" in link):
            assert_opens_the_running_site(page, link, site_url, logged_in=True)
        (artifacts_dir / "browser").mkdir(exist_ok=True)
        page.screenshot(path=str(artifacts_dir / "browser" / "make-run-email-last-link.png"), full_page=True)

        assert stack.ctrl_c() == 0, stack.output[-3000:]
        print(f"{len(links)} links opened; daily email in the outbox {sent_after_s:.1f} s after dispatch_due started")
    finally:
        context.close()
        stack.kill()
