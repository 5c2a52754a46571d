"""`make run` in a terminal: web, worker and beat come up, the banner is the last thing printed and
stays last, and one Ctrl-C stops everything with exit status 0 and no error lines.

The terminal is a real pseudo-terminal and Ctrl-C is the byte the keyboard sends (0x03), so the
kernel signals the terminal's foreground process group exactly as it does for a person.
"""

import contextlib
import json
import os
import pty
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools.servers import REPO_ROOT, base_child_env, free_port, wait_for

pytestmark = pytest.mark.slow

QUIET_CHECK_S = 65  # longer than beat's every-minute dispatch
# make's "Error 130", honcho's "stopped (rc=-15)", Celery's "exited with 'signal 15 (SIGTERM)'".
ERROR_LINES = re.compile(r"Error \d+|ERROR/|exited with '?signal|stopped \(rc=|Traceback|\*\*\*|did not stop")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


class Terminal:
    """`make run` started in a pseudo-terminal of its own; everything it prints is kept."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.chunks: list[bytes] = []
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a new session whose controlling terminal is the pty
            os.chdir(REPO_ROOT)
            os.execvpe(argv[0], argv, env)  # noqa: S606 - make, by name, as a person types it
        threading.Thread(target=self._read, daemon=True).start()
        self.status: int | None = None

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # the last process holding the terminal has closed it
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def output(self) -> str:
        text = b"".join(self.chunks).decode("utf-8", "replace").replace("\r\n", "\n")
        self.log_path.write_text(text)
        return text

    def press_ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def wait(self, timeout: float) -> int:
        def ended():
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            return pid != 0

        wait_for(ended, timeout=timeout, interval=0.2, what="make run to exit")
        return self.status

    def kill(self, var_dir: Path) -> None:
        """After a failure: end make and every process of the stack, by process id."""
        if self.status is None:
            for pid in [self.pid, *processes_using(var_dir)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.wait(timeout=30)


def processes_using(var_dir: Path) -> list[int]:
    """Processes whose environment names this test's VAR_DIR: the stack's, and only its."""
    marker = f"VAR_DIR={var_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone, or not ours to read
                continue
    return found


def test_make_run_banner_last_quiet_and_one_ctrl_c_stops_everything_with_exit_0(tmp_path, artifacts_dir):
    port = free_port()
    var_dir = tmp_path / "var"
    env = base_child_env(PORT=str(port), VAR_DIR=str(var_dir))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_BACKEND", "REDIS_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    env["DJANGO_ENV"] = "development"
    env.pop("SITE_URL", None)
    # As typed in a shell, not as a sub-make of `make test` (which would print "make[1]: ..." lines).
    for name in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
        env.pop(name, None)
    started = time.monotonic()
    terminal = Terminal(["make", "run"], env, artifacts_dir / "make-run.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: "Press Ctrl-C" in terminal.output, timeout=240, interval=0.5, what="the banner")
        banner_after_s = time.monotonic() - started
        banner_at = terminal.output.rindex("Daily Horoscope is running")
        # The banner came after the processes were up: every check of /healthz passes.
        status, body = get(f"{base}/healthz")
        assert status == 200, body
        assert json.loads(body)["checks"]["worker"] == {"ok": True}
        assert f"Daily Horoscope is running: {base}/" in terminal.output
        assert f"{base}/outbox/" in terminal.output and f"{base}/admin/" in terminal.output
        # Nothing repeats every minute: a minute on, the banner is still the last thing printed
        # but for the request above (and, on a slow machine, the script's own check of /healthz).
        time.sleep(QUIET_CHECK_S)
        after_banner = terminal.output[banner_at:].splitlines()
        request_lines = [line for line in after_banner if "web.1" in line]
        assert 1 <= len(request_lines) <= 2, after_banner
        assert all('"GET /healthz HTTP/1.1" 200' in line for line in request_lines), after_banner
        others = [line for line in after_banner if "web.1" not in line]
        assert others[-2:] == ["  Press Ctrl-C to stop the web server, worker and beat.", ""], after_banner
        assert not any(re.match(r"\d\d:\d\d:\d\d (worker|beat)", line) for line in after_banner), after_banner
        assert (var_dir / "db.sqlite3").exists()
        assert (var_dir / "site-url").read_text().strip() == base

        terminal.press_ctrl_c()
        assert terminal.wait(timeout=60) == 0, terminal.output[-3000:]
    finally:
        terminal.kill(var_dir)
    output = terminal.output
    assert "Stopped." in output.splitlines()[-1]
    assert not ERROR_LINES.search(output), ERROR_LINES.search(output)
    # Every process of the stack is gone after the one Ctrl-C, and the port is free again.
    wait_for(lambda: not processes_using(var_dir), timeout=30, what="the stack's processes to exit")
    assert get(f"{base}/") == (0, b"")
    print(f"make run: banner {banner_after_s:.0f} s after start on an empty data folder")
