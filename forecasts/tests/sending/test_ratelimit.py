"""The shared send rate: many senders at once never take more than the rate in any second."""

import threading
import time
import uuid

import pytest
from django.db import connection

from devtools.rates import most_in_any_window
from forecasts.sending.ratelimit import SLOTS_PER_TAKE, DatabaseRateLimiter, RedisRateLimiter, SendSlots, window_for


def test_windows_keep_fractional_rates_honest():
    assert window_for(20, 0.1) == (20, pytest.approx(1.1))
    assert window_for(14.5, 0.1) == (14, pytest.approx(1.1))  # never 15 in a second
    assert window_for(0.5, 0.0) == (1, pytest.approx(2.0))  # one every two seconds
    with pytest.raises(ValueError, match="positive"):
        window_for(0, 0.1)


def hammer(limiter, rate: float, threads: int, each: int, at_once: int = 1) -> list[float]:
    """`threads` senders each take `each` slots, asking for up to `at_once` a time; returns when
    each slot was granted."""
    granted: list[float] = []
    lock = threading.Lock()

    def sender():
        try:
            left = each
            while left:
                taken = limiter.acquire(rate, timeout=30, count=min(at_once, left))
                assert 1 <= taken <= min(at_once, left)
                left -= taken
                with lock:
                    granted.extend([time.time()] * taken)
        finally:
            connection.close()

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return granted


@pytest.fixture
def redis_url(redis_proc):
    return f"redis://{redis_proc.host}:{redis_proc.port}/2"


def test_redis_limiter_shares_the_rate_between_senders(redis_url):
    limiter = RedisRateLimiter(url=redis_url, key=f"test-rate-{uuid.uuid4().hex}", margin=0.05)
    started = time.time()
    granted = hammer(limiter, rate=25, threads=6, each=10)
    assert len(granted) == 60
    assert most_in_any_window(granted, 1.0) <= 25
    assert time.time() - started < 4.5  # and it is not slower than it needs to be (60 at 25/s)


def test_redis_limiter_hands_out_several_slots_at_once_within_the_rate(redis_url):
    limiter = RedisRateLimiter(url=redis_url, key=f"test-rate-{uuid.uuid4().hex}", margin=0.05)
    assert limiter.acquire(10, count=4) == 4
    assert limiter.acquire(10, count=8) == 6  # only what the window has left
    assert limiter.acquire(10, timeout=0.1, count=3) == 0
    granted = hammer(limiter, rate=30, threads=4, each=20, at_once=7)
    assert len(granted) == 80
    assert most_in_any_window(granted, 1.0) <= 30


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("at_once", [1, 6])
def test_database_limiter_shares_the_rate_between_senders(at_once):
    limiter = DatabaseRateLimiter(key=f"test-rate-{uuid.uuid4().hex}", margin=0.05)
    granted = hammer(limiter, rate=20, threads=4, each=10, at_once=at_once)
    assert len(granted) == 40
    assert most_in_any_window(granted, 1.0) <= 20


def test_a_full_window_makes_a_sender_wait_or_give_up(redis_url):
    limiter = RedisRateLimiter(url=redis_url, key=f"test-rate-{uuid.uuid4().hex}", margin=0.0)
    assert limiter.acquire(2) and limiter.acquire(2)
    assert limiter.acquire(2, timeout=0.1) == 0  # the third of the second must wait ~1 s
    started = time.monotonic()
    assert limiter.acquire(2, timeout=3)
    assert 0.5 < time.monotonic() - started < 1.5


class CountingLimiter:
    """Grants what is asked for and remembers how many slots each round trip asked for."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def acquire(self, rate: float, timeout: float | None = None, count: int = 1) -> int:
        self.asked.append(count)
        return count


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sends(slots, clock: Clock, count: int, every: float) -> None:
    for _ in range(count):
        assert slots.take(deadline=clock.now + 60)
        clock.now += every


def test_a_fast_sender_takes_slots_in_batches_a_slow_one_one_at_a_time(settings):

    settings.SES_RATE_WINDOW_MARGIN = 0.1  # slots are spent within 50 ms of being taken
    fast_limiter, slow_limiter, fast_clock, slow_clock = CountingLimiter(), CountingLimiter(), Clock(), Clock()

    sends(SendSlots(fast_limiter, 1000, clock=fast_clock), fast_clock, 400, every=0.001)
    sends(SendSlots(slow_limiter, 1000, clock=slow_clock), slow_clock, 40, every=0.030)

    # 1 ms an email: 20 slots last 20 ms, well inside 50 ms.
    assert max(fast_limiter.asked) == SLOTS_PER_TAKE and len(fast_limiter.asked) < 400 / 10
    # 30 ms an email (SES's own wait): a second slot would go stale unused, so only one is taken.
    assert slow_limiter.asked == [1] * 40


def test_at_a_low_rate_one_slot_is_taken_at_a_time_however_fast_the_sender(settings):

    limiter, clock = CountingLimiter(), Clock()
    sends(SendSlots(limiter, 14, clock=clock), clock, 50, every=0.0001)
    assert set(limiter.asked) == {1}


# --- Slots expire: at SES-like rates (500+/s), taken in batches, on Redis and on the database ---

FAST_RATE = 600  # sends per second; with a 0.05 s margin the window is 1.05 s


def fill_then_refill(limiter) -> list[float]:
    """Fill the window in batches of SLOTS_PER_TAKE, then take a second window's worth as the first
    window's slots expire; returns when each slot was granted (monotonic)."""
    capacity, window = window_for(FAST_RATE, limiter.margin)
    granted: list[float] = []
    while taken := limiter.acquire(FAST_RATE, timeout=0, count=SLOTS_PER_TAKE):
        granted += [time.monotonic()] * taken
    assert len(granted) >= capacity  # the loop stopped: the window was full

    taken = limiter.acquire(FAST_RATE, timeout=3 * window, count=SLOTS_PER_TAKE)
    assert taken, "the full window never freed up: slots do not expire"
    granted += [time.monotonic()] * taken
    assert window * 0.8 < granted[-1] - granted[0] < window * 2  # freed when the first slots expired

    deadline = time.monotonic() + 3 * window
    while len(granted) < 2 * capacity + SLOTS_PER_TAKE:
        taken = limiter.acquire(FAST_RATE, timeout=max(0.0, deadline - time.monotonic()), count=SLOTS_PER_TAKE)
        assert taken, f"only {len(granted)} slots in {3 * window:.2f} s: expired slots are not reused"
        granted += [time.monotonic()] * taken
    assert most_in_any_window(granted, 1.0) <= capacity
    return granted


def test_redis_slots_expire_at_hundreds_a_second(redis_url):
    limiter = RedisRateLimiter(url=redis_url, key=f"test-rate-{uuid.uuid4().hex}", margin=0.05)
    granted = fill_then_refill(limiter)
    assert granted[-1] - granted[0] < 3.5


@pytest.mark.django_db
def test_database_slots_expire_at_hundreds_a_second():
    limiter = DatabaseRateLimiter(key=f"test-rate-{uuid.uuid4().hex}", margin=0.05)
    granted = fill_then_refill(limiter)
    assert granted[-1] - granted[0] < 3.5


class RecordingLimiter:
    """A real limiter, remembering how many slots each round trip got."""

    def __init__(self, limiter) -> None:
        self.limiter = limiter
        self.granted: list[int] = []

    def acquire(self, rate: float, timeout: float | None = None, count: int = 1) -> int:
        taken = self.limiter.acquire(rate, timeout=timeout, count=count)
        self.granted.append(taken)
        return taken


def test_batched_slots_left_unspent_go_stale_and_are_never_sent_on(redis_url, settings):
    settings.SES_RATE_WINDOW_MARGIN = 0.1  # a batch is spent within 50 ms of being taken, or dropped
    limiter = RecordingLimiter(RedisRateLimiter(url=redis_url, key=f"test-rate-{uuid.uuid4().hex}", margin=0.1))
    clock = Clock()
    slots = SendSlots(limiter, FAST_RATE, clock=clock)

    sends(slots, clock, 25, every=0.001)  # a fast sender: it takes batches
    assert max(limiter.granted) == SLOTS_PER_TAKE and slots.left > 0
    round_trips = len(limiter.granted)

    clock.now += 0.2  # a pause (a slow render, a GC) past the batch's freshness
    assert slots.take(deadline=clock.now + 5)
    assert len(limiter.granted) == round_trips + 1  # a fresh slot from the limiter, not a stale one
