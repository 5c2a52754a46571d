"""`make run`: prepare the site, start the Procfile's processes, say where to look, stop on Ctrl-C.

The processes are the Procfile's, started with the commands and environment `honcho start` gives
them (honcho's own parser; PORT = base + 100 for each process), plus one SITE_URL for all of
them, also recorded in VAR_DIR for commands run later by hand. Not `honcho start` itself: it
reports each child its SIGTERM stopped as a failure and exits 130 on Ctrl-C. Here the banner
comes last, once the web answers and a worker is alive, and one Ctrl-C stops everything, exit 0.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import environ
from honcho.environ import expand_processes, parse_procfile

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 180  # the banner shows anyway after this, saying what is not up
QUIET_BEFORE_BANNER_S = 1.0  # so start-up lines still in flight do not print under the banner
STOP_TIMEOUT_S = 15  # a process still running this long after being asked to stop is killed
STOPPED_BY_US = {0, -signal.SIGINT, 128 + signal.SIGINT}  # the shell may report either


def local_host(host: str) -> str:
    """The host a browser on this machine uses for a server listening on `host`."""
    # Listening on every interface includes this machine's own.
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host  # noqa: S104


def local_site_url(host: str, port: int) -> str:
    host = local_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Stack:
    """The Procfile's processes, each in its own session, their output relayed line by line."""

    def __init__(self, procfile: Path, base_port: int, env: dict[str, str]) -> None:
        definitions = parse_procfile(procfile.read_text(encoding="utf-8")).processes
        self.params = expand_processes(definitions, port=base_port)
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}
        self.width = max(len(p.name) for p in self.params)
        self.last_output = time.monotonic()
        self._lock = threading.Lock()

    def start(self) -> None:
        for params in self.params:
            child = subprocess.Popen(  # noqa: S602 - Procfile lines are shell commands, as in honcho
                params.cmd,
                shell=True,
                cwd=REPO_ROOT,
                env={**self.env, **params.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches this script only; it stops them in order
            )
            self.children[params.name] = child
            threading.Thread(target=self._relay, args=(params.name, child), daemon=True).start()

    def _relay(self, name: str, child: subprocess.Popen) -> None:
        for raw in iter(child.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.say(f"{datetime.now():%H:%M:%S} {name:<{self.width}} | {line}")

    def say(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            self.last_output = time.monotonic()

    def exited(self) -> tuple[str, int] | None:
        """The first process that has ended, with its exit status."""
        for name, child in self.children.items():
            if child.poll() is not None:
                return name, child.returncode
        return None

    def stop(self, hurry: threading.Event) -> dict[str, int]:
        """SIGINT to every process group, SIGKILL to what is left after STOP_TIMEOUT_S (or on `hurry`).

        SIGINT, as a terminal's Ctrl-C would send them: Celery's pool processes ignore it and let
        their worker finish its tasks, where a SIGTERM to the group kills them mid-task.
        """
        for child in self.children.values():
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(running(child) for child in self.children.values()):
            if hurry.is_set() or time.monotonic() > deadline:
                for name, child in self.children.items():
                    if running(child):
                        self.say(f"{name} did not stop in time; killing it.")
                        with suppress(ProcessLookupError, PermissionError):
                            os.killpg(child.pid, signal.SIGKILL)
                hurry.clear()
                deadline = float("inf")
            time.sleep(0.1)
        return {name: child.returncode for name, child in self.children.items()}


def running(child: subprocess.Popen) -> bool:
    """True while the process or anything else in its group runs: the shell running a Procfile
    line may end before the worker it started has finished its tasks."""
    if child.poll() is None:
        return True
    proc = Path("/proc")
    if not proc.is_dir():  # no /proc (macOS): ask the kernel, which also counts zombies
        try:
            os.killpg(child.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...; comm may hold spaces, so split after its ")".
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if int(pgrp) == child.pid and state != "Z":  # a zombie waits for init, not for us
            return True
    return False


def take_the_terminal() -> Callable[[], None]:
    """Move this script into its own process group in the terminal's foreground.

    Ctrl-C then signals this script alone, not make: make dies of a SIGINT it receives itself
    (exit 130) however cleanly its recipe ends. Returns what gives the terminal back.
    """
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
            return lambda: None
        previous = os.getpgrp()
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not set the foreground
        os.tcsetpgrp(fd, os.getpgrp())
    except (OSError, ValueError):
        return lambda: None

    def give_back() -> None:
        with suppress(OSError):
            os.tcsetpgrp(fd, previous)

    return give_back


def prepare(site_url: str) -> None:
    """Migrate and prepare content in this process (one Django start instead of two)."""
    import django
    from django.core.management import call_command
    from django.db import connections

    from horoscope_site.entrypoints import exit_on_config_error

    with exit_on_config_error():
        django.setup()
    call_command("migrate", interactive=False)
    call_command("site_prepare", site_url=site_url)
    connections.close_all()


def not_up_yet(host: str, port: int) -> str | None:
    """What is not up yet, checked without requests that would log a line each."""
    from django.db import connections

    from horoscope_site.health import check_worker

    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return "the web server does not answer yet"
    try:
        return check_worker()
    finally:
        connections.close_all()


def wait_until_up(stack: Stack, local_url: str, host: str, port: int, stopping: threading.Event) -> str | None:
    """Wait for the web and a worker; returns what is still not up after READY_TIMEOUT_S, or None."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    problem = "not checked"
    while not stopping.is_set() and stack.exited() is None and time.monotonic() < deadline:
        problem = not_up_yet(host, port)
        if problem is None:
            try:
                with urllib.request.urlopen(f"{local_url}/healthz", timeout=10) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError) as error:
                problem = f"/healthz answers {error}"
        time.sleep(0.5)
    else:
        return problem
    # Let the web's log line for that request, and anything else in flight, print first.
    settle = time.monotonic() + 5
    while time.monotonic() - stack.last_output < QUIET_BEFORE_BANNER_S and time.monotonic() < settle:
        time.sleep(0.1)
    return None


def banner(site_url: str, problem: str | None) -> list[str]:
    from django.conf import settings

    from forecasts.sending.outbox import OUTBOX_BACKEND

    lines = ["", f"  Daily Horoscope is running: {site_url}/"]
    if settings.EMAIL_BACKEND == OUTBOX_BACKEND:
        lines.append(f"  Emails it sends:   {site_url}/outbox/   (.eml files in {settings.EMAIL_OUTBOX_DIR})")
    lines += [
        f"  Admin:             {site_url}/admin/",
        "                     (make a login: .venv/bin/python manage.py createsuperuser)",
        f"  Health:            {site_url}/healthz",
    ]
    if problem:
        lines.append(f"  Not up yet: {problem}. Look at the lines above.")
    lines += ["  Press Ctrl-C to stop the web server, worker and beat.", ""]
    return lines


def main() -> int:
    if (REPO_ROOT / ".env").exists():  # as settings read it: the environment wins
        environ.Env.read_env(REPO_ROOT / ".env")
    host = os.environ.get("HOST") or "127.0.0.1"
    port = int(os.environ.get("PORT") or 8000)
    # One address for every process, whatever PORT each is given; an explicit SITE_URL wins.
    site_url = (os.environ.get("SITE_URL") or local_site_url(host, port)).rstrip("/")
    os.environ.update(SITE_URL=site_url, HOST=host, PORT=str(port))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "horoscope_site.settings")
    os.chdir(REPO_ROOT)

    stopping, hurry = threading.Event(), threading.Event()

    def on_signal(signum, frame):
        if stopping.is_set():
            hurry.set()  # a second Ctrl-C: do not wait for a slow process
        stopping.set()

    give_back = take_the_terminal()
    try:
        try:
            prepare(site_url)
        except KeyboardInterrupt:
            print("\nStopped before the site started.")
            return 0
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)
        stack = Stack(REPO_ROOT / "Procfile", port, dict(os.environ))
        stack.start()
        problem = wait_until_up(stack, local_site_url(host, port), local_host(host), port, stopping)
        if not stopping.is_set() and stack.exited() is None:
            stack.say("\n".join(banner(site_url, problem)))
        while not stopping.is_set() and stack.exited() is None:
            time.sleep(0.2)
        ended = stack.exited() if not stopping.is_set() else None
        if ended:
            stack.say(f"{ended[0]} stopped by itself (exit status {ended[1]}); stopping the others.")
        else:
            stack.say("Stopping the web server, worker and beat...")
        statuses = stack.stop(hurry)
        failed = {name: status for name, status in statuses.items() if status not in STOPPED_BY_US}
        for name, status in failed.items():
            if not ended or name != ended[0]:
                stack.say(f"{name} ended with exit status {status}.")
        if ended or failed:
            return 1
        stack.say("Stopped.")
        return 0
    finally:
        give_back()


if __name__ == "__main__":
    sys.exit(main())
