"""A send rate shared by every worker on every machine, so SES never sees more than its maximum.

django-ses's own AUTO_THROTTLE counts sends in one process only; two workers would send twice
the allowed rate. Here every send has a slot on one schedule kept in Redis (when REDIS_URL is
set) or in the database: each slot is an instant, the slots spaced evenly, `spacing` apart,
where `capacity` slots span the rate's second plus SES_RATE_WINDOW_MARGIN (`slot_spacing`). A
sender books its slot, sleeps until that instant and sends; so the sends are spread evenly over
the second instead of coming in bursts, and the margin absorbs the spread between a slot's
instant and the request reaching SES: with the default 0.025 s, sends whose arrival at SES
varies by less than 25 ms never put more than the rate in any second, while the workers keep
97.6% of the rate. A slot used more than half the margin late is dropped unused, not sent into a
crowded second (`SendSlots`), which also takes a few slots per round trip when sending fast.
The implementation is picked by the SEND_RATE_LIMITER setting.
"""

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

# Not the sliding window's key of earlier releases (a sorted set in Redis, a list of send times in
# the database): during a rolling deploy old and new workers then never misread each other's state.
RATE_KEY = "horoscope:ses-send-schedule"
# A fast sender books at most this many slots per round trip, and no more than its slots span
# BLOCK_SPAN_S of the schedule: at 1,000/s that is ten slots a round trip, below 100/s one.
SLOTS_PER_TAKE = 20
BLOCK_SPAN_S = 0.010
# A slot is used at most this fraction of SES_RATE_WINDOW_MARGIN after its instant, or dropped:
# the rest of the margin is for the way from here to SES.
SLOT_FRESH_FRACTION = 0.5


def window_for(rate: float, margin: float) -> tuple[int, float]:
    """(capacity, window seconds) for a rate in sends per second: `capacity` sends per `window`.

    Fractional rates keep their meaning: 0.5/s is one send per two seconds, 14.5/s is 14
    sends per second (never 15, which would exceed 14.5 in some second).
    """
    if rate <= 0:
        raise ValueError("a send rate must be positive")
    capacity = max(1, math.floor(rate))
    return capacity, max(1.0, capacity / rate) + margin


def slot_spacing(rate: float, margin: float) -> float:
    """Seconds between two slots: `capacity` + 1 slots span more than the window, so even sends
    arriving up to `margin` apart from their instants never put capacity + 1 in one second."""
    capacity, window = window_for(rate, margin)
    return window / capacity


@dataclass(frozen=True)
class Booking:
    """What one booking did to a schedule: slots taken, the first one's instant, the next free one."""

    taken: int
    first_at: float  # the first slot's instant; if none was taken, when the first free one is
    next_at: float  # the schedule's next free instant after this booking


def schedule_book(
    next_at: float, now: float, spacing: float, count: int, max_wait: float | None = None, catch_up: float = 0.0
) -> Booking:
    """Book `count` consecutive slots of a schedule whose next free slot is at `next_at`.

    The first slot is the next free one; if that passed unused, the one `catch_up` seconds ago
    at most (used a little late, as any slot may be), so a sender that comes a moment late does
    not leave the slot unused; an idle schedule saves up no more for a burst. Nothing is booked
    if the first slot is more than `max_wait` away. Both limiters follow this rule (the Redis
    script is its copy in Lua).
    """
    first = max(next_at, now - catch_up)
    if max_wait is not None and first - now > max_wait:
        return Booking(0, first, next_at)
    return Booking(count, first, first + count * spacing)


@dataclass(frozen=True)
class Reservation:
    """Slots booked for one sender: `taken` slots, the first `wait` seconds after the limiter was
    called (negative: that long before), then one every `spacing` seconds. With none taken,
    `wait` is how far off the first free slot was."""

    taken: int
    wait: float
    spacing: float


class SendRateLimiter(Protocol):
    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None, catch_up: float = 0.0) -> Reservation:
        """Book `count` consecutive slots at `rate` per second (see `schedule_book`)."""
        ...


# Runs inside Redis, so reading and moving the schedule is one atomic step for every worker.
# The clock is Redis's own (TIME), shared by all machines; times in microseconds.
# schedule_book in Lua; the wait is rounded up, so no slot is used early.
_REDIS_SCRIPT = """
local key = KEYS[1]
local spacing = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local catch_up = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_at = tonumber(redis.call('GET', key) or '0')
local first = math.max(next_at, now - catch_up)
local wait = math.ceil(first - now)
if max_wait >= 0 and wait > max_wait then
  return {0, wait}
end
local after = first + count * spacing
redis.call('SET', key, string.format('%.3f', after), 'PX', math.ceil((after - now) / 1000) + 60000)
return {count, wait}
"""


class RedisRateLimiter:
    """The schedule as one value in Redis (REDIS_URL): the instant of its next free slot."""

    def __init__(self, url: str | None = None, key: str = RATE_KEY, margin: float | None = None) -> None:
        self.url = url or settings.REDIS_URL
        self.key = key
        self.margin = settings.SES_RATE_WINDOW_MARGIN if margin is None else margin
        self._local = threading.local()

    def _script(self):
        # One client per thread (and so per forked worker child, which starts with no threads' state).
        script = getattr(self._local, "script", None)
        if script is None:
            import redis

            client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
            script = self._local.script = client.register_script(_REDIS_SCRIPT)
        return script

    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None, catch_up: float = 0.0) -> Reservation:
        spacing = slot_spacing(rate, self.margin)
        limit_us = -1 if max_wait is None else int(max_wait * 1_000_000)
        args = [repr(spacing * 1_000_000), max(1, count), limit_us, int(catch_up * 1_000_000)]
        taken, wait_us = self._script()(keys=[self.key], args=args)
        return Reservation(int(taken), int(wait_us) / 1_000_000, spacing)


class DatabaseRateLimiter:
    """The schedule in one locked row (no Redis: the embedded default).

    The row lock serialises workers (SELECT ... FOR UPDATE on PostgreSQL, an IMMEDIATE
    transaction on SQLite). Instants come from each machine's clock, so keep clocks in sync.
    The row's `stamps` holds one instant, the next free slot's (Unix seconds).
    """

    def __init__(self, key: str = RATE_KEY, margin: float | None = None) -> None:
        self.key = key
        self.margin = settings.SES_RATE_WINDOW_MARGIN if margin is None else margin

    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None, catch_up: float = 0.0) -> Reservation:
        from forecasts.models import SendRateWindow

        called = time.monotonic()
        spacing = slot_spacing(rate, self.margin)
        with transaction.atomic():
            row = SendRateWindow.objects.select_for_update().filter(key=self.key).first()
            if row is None:
                try:
                    with transaction.atomic():
                        SendRateWindow.objects.create(key=self.key)
                except IntegrityError:  # another worker made it first
                    pass
                row = SendRateWindow.objects.select_for_update().get(key=self.key)
            now, since_called = time.time(), time.monotonic() - called
            # Waiting for the row's lock took time already: the first slot is that much closer.
            max_wait = None if max_wait is None else max_wait - since_called
            next_at = float(row.stamps[0]) if row.stamps else 0.0
            booking = schedule_book(next_at, now, spacing, max(1, count), max_wait, catch_up)
            if booking.taken:
                row.stamps = [booking.next_at]
                row.save(update_fields=["stamps"])
        return Reservation(booking.taken, booking.first_at - now + since_called, spacing)


@lru_cache(maxsize=4)
def _limiter(path: str, redis_url: str, margin: float) -> SendRateLimiter:
    return import_string(path)()


def send_rate_limiter() -> SendRateLimiter:
    """The configured limiter (SEND_RATE_LIMITER), built once per process."""
    return _limiter(settings.SEND_RATE_LIMITER, settings.REDIS_URL, settings.SES_RATE_WINDOW_MARGIN)


class SendSlots:
    """One sender's slots of the shared schedule: booked a few per round trip, each used at its instant.

    `take` sleeps until the next slot's instant. A slot used more than `late_by_at_most` after
    its instant (a slow render, a pause, a wake-up the machine was too busy to give on time) is
    dropped unused: sent then, it would land among the next slots' sends. A slot a moment in
    the past that nobody took is booked as if on time (`catch_up`), so senders that come a
    little late do not leave the schedule idle. A round trip to the limiter per email would
    cost about as much as building the email, so a fast sender books several consecutive slots
    at once; as many as it can use in time, judged by its own work per email (the time from one
    `take` returning to the next call): a sender slower than the slots' spacing falls a little
    further behind with each one, and books only as many as stay within `late_by_at_most`. At
    low rates (a slot every 10 ms or more) one slot is booked at a time, so one sender never
    holds what another could use.
    """

    def __init__(self, limiter, rate: float, clock=time.monotonic, sleep=time.sleep) -> None:
        self.limiter = limiter
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.spacing = slot_spacing(rate, settings.SES_RATE_WINDOW_MARGIN)
        self.late_by_at_most = settings.SES_RATE_WINDOW_MARGIN * SLOT_FRESH_FRACTION
        self.catch_up = self.late_by_at_most / 2  # the other half: the limiter's answer on its way back
        self.most_per_take = max(1, min(SLOTS_PER_TAKE, int(BLOCK_SPAN_S / self.spacing)))
        self.instants: deque[float] = deque()  # this sender's booked slots, on `clock`
        self.dropped = 0
        self.returned_at: float | None = None
        self.work: float | None = None  # seconds of the sender's own work per email, averaged

    def _per_take(self) -> int:
        if self.work is None:
            return 1
        falls_behind = self.work - self.spacing  # per slot, when the sender is slower than the slots
        if falls_behind <= 0:
            return self.most_per_take
        return max(1, min(self.most_per_take, 1 + int(self.late_by_at_most / falls_behind)))

    def _book(self, deadline: float) -> bool:
        asked_at = self.clock()
        booked = self.limiter.acquire(
            self.rate, count=self._per_take(), max_wait=max(0.0, deadline - asked_at), catch_up=self.catch_up
        )
        # From when it was asked: a late answer makes the slots look late (and dropped if too
        # late), never early.
        first = asked_at + booked.wait
        self.instants.extend(first + i * booked.spacing for i in range(booked.taken))
        return bool(booked.taken)

    def take(self, deadline: float) -> bool:
        """Wait for this sender's next slot; False if `deadline` (on `clock`) comes first."""
        now = self.clock()
        if self.returned_at is not None:
            work = now - self.returned_at
            self.work = work if self.work is None else 0.8 * self.work + 0.2 * work
        while True:
            while self.instants and self.instants[0] < self.clock() - self.late_by_at_most:
                self.instants.popleft()
                self.dropped += 1
            if not self.instants and not self._book(deadline):
                return False
            instant = self.instants[0]
            if instant > deadline:
                self.instants.clear()
                return False
            wait = instant - self.clock()
            if wait > 0:
                self.sleep(wait)
            if self.clock() - instant <= self.late_by_at_most:  # else woken too late: dropped above
                self.instants.popleft()
                self.returned_at = self.clock()
                return True
