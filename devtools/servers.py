"""Throwaway servers for tests: PostgreSQL and Celery workers on free ports.

PostgreSQL refuses to run as root and pytest-postgresql cannot switch users, so this
starts Debian's binaries directly, as the `postgres` user when the tests run as root.
Redis comes from pytest-redis (see conftest.py).
"""

import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on a free loopback port, AWS APIs over HTTP; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its accounts per Python process, not per server: without a reset, a server
    # started after another (a later test module) would see the queues and roles that one made.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
    try:
        yield endpoint
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def postgres_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: run `make test` (it installs them)")
    return Path(candidates[0]).parent


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, listening on loopback only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="horoscope-pg-"))
        self.datadir = self.root / "data"
        self.process: subprocess.Popen | None = None
        # The server runs as `postgres` when we are root; the superuser role is always "postgres".
        self.os_user = "postgres" if os.geteuid() == 0 else None

    def start(self) -> "PostgresServer":
        bindir = postgres_bindir()
        if self.os_user:
            shutil.chown(self.root, self.os_user)
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            stdout=subprocess.DEVNULL,
            user=self.os_user,
        )
        argv = [str(bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port), "-k", str(self.root)]
        for option in (
            "listen_addresses=127.0.0.1",
            "fsync=off",  # a throwaway cluster: durability is not what the tests check
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
        ):
            argv += ["-c", option]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "postgres.log", "wb"),  # noqa: SIM115
            user=self.os_user,
        )
        wait_for(self._ready, timeout=30, what="PostgreSQL to accept connections")
        return self

    def _ready(self) -> bool:
        try:
            psycopg.connect(self.dsn("postgres"), connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True

    def dsn(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def django_settings(self, dbname: str = "horoscope") -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": dbname,
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "OPTIONS": {},
            "TEST": {"NAME": "test_horoscope"},
        }

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing to keep
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class ManagedProcess:
    """A child process of the repo's code (a Celery worker, beat, the web server)."""

    def __init__(self, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_start = 0

    def start(self) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The file keeps earlier runs (test-artifacts/ outlives a test run); log() reads this one's.
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        """What this process has written so far (not what earlier runs left in the same file)."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker has children)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def celery_worker(
    env: Mapping[str, str], log_path: Path, name: str = "w1", concurrency: int = 2, queues: str = ""
) -> ManagedProcess:
    """A real Celery worker process for this project."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "horoscope_site",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        f"--hostname={name}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if queues:
        argv.append(f"--queues={queues}")
    return ManagedProcess(argv, env, log_path).start()


def base_child_env(**overrides: str) -> dict[str, str]:
    """Environment for child processes running the project's code in tests."""
    # DJANGO_ALLOW_ASYNC_UNSAFE is a browser-test workaround for this process only (see conftest.py).
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTEST_") and key != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env.update({"DJANGO_SETTINGS_MODULE": "horoscope_site.settings", "DJANGO_ENV": "test", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def database_url(settings_dict: Mapping) -> str:
    """DATABASE_URL for the database Django is using (the test database during tests)."""
    return (
        f"postgresql://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
