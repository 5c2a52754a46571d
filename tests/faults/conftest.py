"""The fault-injection harness: real Celery workers on a real Redis, the test PostgreSQL, the SES sink.

Each test gets its own SES sink, its own Redis databases (flushed) and the workers it starts
through `faults.worker(...)`, stopped (or already killed) when it ends. Faults are injected
from here: SIGKILL of a worker's process group, a broker restart, a PostgreSQL backend
terminated, an LLM endpoint that hangs or is gone, a Pinecone host that refuses connections.
Assertions are on the database and on the emails the sink received over HTTP, never on logs.
"""

import json
import os
import signal
import subprocess
import threading
import time as clock
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Subscription, User
from devtools.servers import ManagedProcess, base_child_env, celery_worker, database_url, free_port, wait_for
from devtools.ses_sink import SesSink, SinkMessage
from forecasts.models import Delivery
from forecasts.sending import ses_events
from forecasts.sending.ses import forget_max_send_rate
from forecasts.tests.factories import add_readers
from forecasts.tests.sending.test_daily_send_workers import forecasts_for_days
from tests.support.sns import CERT_PATH, TOPIC, SnsSigner, sns_certificate_host, trust_test_sns
from tests.support.workers import tasks_sent_to

MAX_SEND_RATE = 20  # what the sink's GetAccount answers: the rate every worker shares
VISIBILITY_TIMEOUT = 5  # seconds before Redis hands a task held by a dead worker to another one
# kombu's Redis transport keeps reserved (delivered, not yet acknowledged) messages here.
UNACKED, UNACKED_INDEX, QUEUE = "unacked", "unacked_index", "celery"


# --- processes -----------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (a prefork worker's pool), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


class RedisServer:
    """A redis-server of our own, without persistence, that can be stopped and started on the same port."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: ManagedProcess | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    def start(self) -> "RedisServer":
        argv = ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.process = ManagedProcess(argv, os.environ, self.log_path).start()
        wait_for(self._ping, timeout=20, what="redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill(signal.SIGKILL)  # no shutdown save: what it held is gone
            self.process.process.wait(timeout=10)
            wait_for(lambda: not self._ping(), timeout=10, what="redis-server to go away")


# --- the SES event stream, as SES -> SNS -> /ses/events/ would post it ---------------------------


class SesEventStream:
    """Posts SES events for messages the sink accepted to the site's webhook, signed like SNS."""

    def __init__(self, signer: SnsSigner, cert_url: str) -> None:
        self.signer = signer
        self.cert_url = cert_url
        self.client = Client()

    def event(self, event_type: str, message: SinkMessage) -> dict:
        stamp_text = datetime.fromtimestamp(message.at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        body = {
            "eventType": event_type,
            "mail": {
                "timestamp": stamp_text,
                "source": message.from_address,
                "messageId": message.message_id,
                "destination": list(message.to),
                "headersTruncated": False,
                # SES copies the message's own headers into every event: X-Horoscope-Delivery among them.
                "headers": [{"name": name, "value": str(value)} for name, value in message.email.items()],
            },
        }
        if event_type == "Send":
            body["send"] = {}
        elif event_type == "Delivery":
            body["delivery"] = {"timestamp": stamp_text, "recipients": list(message.to), "smtpResponse": "250 OK"}
        return body

    @contextmanager
    def following(self, sink: SesSink, every: float = 1.0) -> Iterator[None]:
        """Post a Send event for each message the sink accepts, within `every` seconds, as SES and SNS do."""
        stop = threading.Event()
        failures: list[BaseException] = []

        def follow() -> None:
            posted = 0
            try:
                while not stop.wait(every):
                    messages = sink.messages
                    self.publish("Send", messages[posted:])
                    posted = len(messages)
            except BaseException as exc:  # reported by the test, not lost in the thread
                failures.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=follow, name="ses-send-events", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=30)
        assert not failures, failures

    def publish(self, event_type: str, messages: Iterable[SinkMessage]) -> list[str]:
        outcomes = []
        for message in messages:
            envelope = self.signer.notification(
                self.event(event_type, message), topic_arn=TOPIC, cert_url=self.cert_url
            )
            response = self.client.post("/ses/events/", data=json.dumps(envelope), content_type="text/plain")
            assert response.status_code == 200, response.content
            outcomes.append(response.content.decode())
        return outcomes


@pytest.fixture(scope="session")
def sns_signer():
    return SnsSigner()


@pytest.fixture(scope="session")
def sns_host(sns_signer):
    with sns_certificate_host(sns_signer) as server:
        yield server


@pytest.fixture
def ses_events_stream(settings, sns_signer, sns_host) -> Iterator[SesEventStream]:
    trust_test_sns(settings, sns_host)
    ses_events.clear_certificate_cache()
    yield SesEventStream(sns_signer, sns_host.url(CERT_PATH))
    ses_events.clear_certificate_cache()


@pytest.fixture
def admin_client() -> Client:
    """An operator logged in to the admin."""
    client = Client()
    client.force_login(User.objects.create(email="operator@example.test", is_staff=True, is_superuser=True))
    return client


def admin_resend(client: Client, delivery_ids: list[int]) -> str:
    """What an operator does: select deliveries in the admin and run the "Resend" action."""
    response = client.post(
        reverse("admin:forecasts_delivery_changelist"),
        {"action": "resend", "_selected_action": delivery_ids},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


# --- the harness ---------------------------------------------------------------------------------


class Faults:
    """One test's sink, broker and workers; see the module docstring."""

    def __init__(self, name: str, sink: SesSink, broker_url: str, cache_url: str, log_dir: Path, var_dir: Path):
        self.name = name
        self.sink = sink
        self.broker_url = broker_url
        self.cache_url = cache_url
        self.log_dir = log_dir
        self.var_dir = var_dir
        self.workers: list[ManagedProcess] = []

    def env(self, **overrides: str) -> dict[str, str]:
        """A worker's environment: the test database, the broker, django-ses pointed at the sink."""
        values = {
            "DATABASE_URL": database_url(django_settings.DATABASES["default"]),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "REDIS_URL": self.cache_url,
            "EMAIL_BACKEND": "django_ses.SESBackend",
            "AWS_SES_REGION_ENDPOINT_URL": self.sink.endpoint_url,
            "AWS_SES_REGION_NAME": "us-east-1",
            "DEFAULT_FROM_EMAIL": "Daily Horoscope <horoscope@example.test>",
            "SES_MAX_SEND_RATE": "0",  # ask the sink's GetAccount, as production asks SES
            # A test machine running many suites at once can delay a send tens of ms after its slot.
            "SES_RATE_WINDOW_MARGIN": "0.1",
            "SEND_BATCH_SIZE": "100",
            "VAR_DIR": str(self.var_dir),
        }
        values.update(overrides)
        return base_child_env(**values)

    def worker(self, name: str, concurrency: int = 2, **env: str) -> ManagedProcess:
        """Start a real Celery worker process and wait until it consumes."""
        log_path = self.log_dir / f"faults-{self.name}-{name}.log"
        log_path.unlink(missing_ok=True)  # "ready" must come from this run, not from an earlier one
        process = celery_worker(self.env(**env), log_path, name=name, concurrency=concurrency)
        self.workers.append(process)
        wait_for(lambda: "ready" in process.log(), timeout=60, what=f"worker {name} to start")
        return process

    @contextmanager
    def enqueue(self) -> Iterator[None]:
        """Tasks enqueued in this (test) process, by dispatch, requeue or the admin, go to the broker."""
        with tasks_sent_to(self.broker_url):
            yield

    # -- what the broker holds (kombu's Redis layout) --
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker_url, socket_connect_timeout=2)

    def unacked(self) -> dict[bytes, float]:
        """Messages delivered to a worker and not acknowledged yet, with the time each was delivered."""
        return dict(self.redis().zrange(UNACKED_INDEX, 0, -1, withscores=True))

    def queued(self) -> int:
        return self.redis().llen(QUEUE)

    def wait_until_redeliverable(self) -> None:
        """Sleep until every unacknowledged message is older than the visibility timeout."""
        stamps = self.unacked().values()
        if stamps:
            clock.sleep(max(0.0, max(stamps) + VISIBILITY_TIMEOUT + 0.5 - clock.time()))

    def wait_broker_drained(self, timeout: float = 60) -> None:
        """Every task delivered and acknowledged: nothing waiting, nothing held."""
        wait_for(lambda: self.queued() == 0 and not self.unacked(), timeout=timeout, what="the broker to be drained")

    def stop(self) -> None:
        # All at once: each warm shutdown takes a moment, and the workers need not wait for each other.
        running = [p for p in self.workers if p.process is not None and p.process.poll() is None]
        for process in running:
            process.kill(signal.SIGTERM)
        for process in running:
            try:
                process.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill(signal.SIGKILL)
                process.process.wait(timeout=5)


@pytest.fixture
def faults(request, redis_proc, artifacts_dir, tmp_path, django_db_setup) -> Iterator[Faults]:
    base = f"redis://{redis_proc.host}:{redis_proc.port}"
    # Databases 2 and 3: apart from the other worker tests' 0 and 1.
    broker_url, cache_url = f"{base}/2", f"{base}/3"
    for url in (broker_url, cache_url):
        redis.Redis.from_url(url).flushdb()
    forget_max_send_rate()
    with SesSink(max_send_rate=MAX_SEND_RATE) as sink:
        harness = Faults(request.node.name, sink, broker_url, cache_url, artifacts_dir, tmp_path / "var")
        try:
            yield harness
        finally:
            harness.stop()
    forget_max_send_rate()


# --- readers, forecasts, and what they received ------------------------------------------------


def readers_due_now(count: int, *, sign: str = "leo", minutes_ago: int = 1) -> tuple[list[Subscription], datetime]:
    """`count` UTC readers whose send time came `minutes_ago` minutes ago (real time), and that instant.

    Real time, because the stale and stuck sweeps measure ages against the clock.
    """
    due = (timezone.now() - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)
    forecasts_around(due)
    readers = add_readers(
        count, time_zone="UTC", delivery_time=due.time(), sign=sign, scheduled_from=due - timedelta(hours=1)
    )
    return readers, due


def forecasts_around(instant: datetime) -> None:
    """Ready forecasts (all signs) for the day before, of and after `instant`, once."""
    from forecasts.models import Forecast

    first = instant.date() - timedelta(days=1)
    if not Forecast.objects.filter(date=first).exists():
        forecasts_for_days(first, 3)


def emails_by_reader(sink: SesSink) -> Counter:
    return Counter(message.to[0] for message in sink.messages)


def assert_one_email_each(sink: SesSink, readers: Iterable[Subscription]) -> None:
    """Every reader got exactly one email, and each Delivery names the SES message the sink accepted."""
    readers = list(readers)
    subscriptions = Subscription.objects.filter(pk__in=[r.pk for r in readers]).select_related("user")
    emails = {s.pk: s.user.email for s in subscriptions}
    received = emails_by_reader(sink)
    assert {address: received[address] for address in emails.values()} == {address: 1 for address in emails.values()}
    by_delivery = {int(m.header("X-Horoscope-Delivery")): m for m in sink.messages}
    deliveries = Delivery.objects.filter(subscription_id__in=emails)
    assert deliveries.count() == len(emails)
    for delivery in deliveries:
        message = by_delivery[delivery.pk]
        assert message.to == (emails[delivery.subscription_id],)
        assert delivery.ses_message_id == message.message_id
        assert delivery.status in (Delivery.Status.SENT, Delivery.Status.DELIVERED)


def statuses(readers: Iterable[Subscription]) -> Counter:
    return Counter(
        Delivery.objects.filter(subscription_id__in=[r.pk for r in readers]).values_list("status", flat=True)
    )


def raw_connection(autocommit: bool = True) -> psycopg.Connection:
    """A connection of the test's own to the test database (not Django's): for locks and admin SQL."""
    return psycopg.connect(database_url(django_settings.DATABASES["default"]), autocommit=autocommit)


def holder_blocks(holder: psycopg.Connection) -> int | None:
    """The pid of a session waiting for a lock that `holder`'s open transaction has, if any."""
    # Asked on a connection of its own: inside a transaction, pg_stat_activity is a snapshot.
    with raw_connection() as watcher:
        row = watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder.info.backend_pid]
        ).fetchone()
    return row[0] if row else None


# --- beat's minute, and what recovery took ------------------------------------------------------


def every_minute_until(run, done, timeout: float, poll: float = 1.0) -> float:
    """Call `run` at each wall-clock minute, as beat's "* * * * *" dispatch does, until `done()`.

    Returns the seconds `done` took to hold; TimeoutError after `timeout` seconds.
    """
    started = clock.monotonic()
    minute = int(clock.time() // 60)
    while not done():
        elapsed = clock.monotonic() - started
        if elapsed > timeout:
            raise TimeoutError(f"not done {timeout:.0f} s after the kill")
        if int(clock.time() // 60) != minute:
            minute = int(clock.time() // 60)
            run()
        clock.sleep(poll)
    return clock.monotonic() - started


def record_measure(artifacts_dir: Path, name: str, values: dict) -> None:
    """Keep what a fault test measured in test-artifacts/faults-recovery.json (read for docs/operations.md)."""
    path = artifacts_dir / "faults-recovery.json"
    measured = json.loads(path.read_text()) if path.exists() else {}
    measured[name] = {**values, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
