"""A send rate shared by every worker on every machine, so SES never sees more than its maximum.

django-ses's own AUTO_THROTTLE counts sends in one process only; two workers would send twice
the allowed rate. Here every send takes a slot from one sliding window kept in Redis (when
REDIS_URL is set) or in the database: at most `capacity` sends in any `window` seconds, where
`window` is the rate's one second plus SES_RATE_WINDOW_MARGIN (the spread between taking a slot
and the request reaching SES). A sender may take several slots in one round trip and spend them
within a fraction of that margin (`SendSlots`): the slots are counted from
the moment they were taken. The implementation is picked by the SEND_RATE_LIMITER setting.
"""

import math
import random
import threading
import time
import uuid
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

RATE_KEY = "horoscope:ses-send-rate"
# The shared send rate is taken this many slots at most per round trip to the limiter, and
# they are spent within this fraction of SES_RATE_WINDOW_MARGIN of being taken (see SendSlots).
SLOTS_PER_TAKE = 20
SLOT_FRESH_FRACTION = 0.5
# Sleeping a little longer than asked spreads waiting workers out instead of waking them together.
WAKE_JITTER_S = 0.005


def window_for(rate: float, margin: float) -> tuple[int, float]:
    """(capacity, window seconds) for a rate in sends per second.

    Fractional rates keep their meaning: 0.5/s is one send per two seconds, 14.5/s is 14
    sends per second (never 15, which would exceed 14.5 in some second).
    """
    if rate <= 0:
        raise ValueError("a send rate must be positive")
    capacity = max(1, math.floor(rate))
    return capacity, max(1.0, capacity / rate) + margin


class SendRateLimiter(Protocol):
    def acquire(self, rate: float, timeout: float | None = None, count: int = 1) -> int:
        """Wait until a send is allowed at `rate` per second and take up to `count` slots at once
        (as many as the window has free); the number taken, 0 if `timeout` passed first."""
        ...


class _SlidingWindowLimiter:
    """The waiting loop; subclasses try to take one slot and say how long to wait if they cannot."""

    def __init__(self, margin: float | None = None) -> None:
        self.margin = settings.SES_RATE_WINDOW_MARGIN if margin is None else margin

    def try_acquire(self, capacity: int, window: float, count: int) -> tuple[int, float]:
        """Take up to `count` free slots: (slots taken, 0), or (0, seconds until one frees up)."""
        raise NotImplementedError

    def acquire(self, rate: float, timeout: float | None = None, count: int = 1) -> int:
        capacity, window = window_for(rate, self.margin)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            taken, wait = self.try_acquire(capacity, window, max(1, count))
            if taken:
                return taken
            wait += random.uniform(0, WAKE_JITTER_S)  # noqa: S311 - spreading wake-ups, not security
            if deadline is not None and time.monotonic() + wait > deadline:
                return 0
            time.sleep(wait)


# Runs inside Redis, so checking and taking a slot is one atomic step for every worker.
# The clock is Redis's own (TIME), shared by all machines.
_REDIS_SCRIPT = """
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2])
local count = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
local free = capacity - redis.call('ZCARD', key)
if free > 0 then
  local taken = math.min(free, count)
  for i = 1, taken do
    redis.call('ZADD', key, now, ARGV[3] .. ':' .. i)
  end
  redis.call('PEXPIRE', key, math.ceil(window_us / 1000) + 1000)
  return {taken, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window_us - now}
"""


class RedisRateLimiter(_SlidingWindowLimiter):
    """The window as a sorted set of send times in Redis (REDIS_URL)."""

    def __init__(self, url: str | None = None, key: str = RATE_KEY, margin: float | None = None) -> None:
        super().__init__(margin)
        self.url = url or settings.REDIS_URL
        self.key = key
        self._local = threading.local()

    def _script(self):
        # One client per thread (and so per forked worker child, which starts with no threads' state).
        script = getattr(self._local, "script", None)
        if script is None:
            import redis

            client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
            script = self._local.script = client.register_script(_REDIS_SCRIPT)
        return script

    def try_acquire(self, capacity: int, window: float, count: int) -> tuple[int, float]:
        taken, wait_us = self._script()(
            keys=[self.key], args=[capacity, int(window * 1_000_000), uuid.uuid4().hex, count]
        )
        return int(taken), int(wait_us) / 1_000_000


class DatabaseRateLimiter(_SlidingWindowLimiter):
    """The window as one locked row of send times (no Redis: the embedded default).

    The row lock serialises workers (SELECT ... FOR UPDATE on PostgreSQL, an IMMEDIATE
    transaction on SQLite). Send times come from each machine's clock, so keep clocks in sync.
    """

    def __init__(self, key: str = RATE_KEY, margin: float | None = None) -> None:
        super().__init__(margin)
        self.key = key

    def try_acquire(self, capacity: int, window: float, count: int) -> tuple[int, float]:
        from forecasts.models import SendRateWindow

        with transaction.atomic():
            row = SendRateWindow.objects.select_for_update().filter(key=self.key).first()
            if row is None:
                try:
                    with transaction.atomic():
                        SendRateWindow.objects.create(key=self.key)
                except IntegrityError:  # another worker made it first
                    pass
                row = SendRateWindow.objects.select_for_update().get(key=self.key)
            now = time.time()
            stamps = sorted(stamp for stamp in row.stamps if stamp > now - window)
            taken = min(count, capacity - len(stamps))
            if taken > 0:
                row.stamps = [*stamps, *[now] * taken]
                row.save(update_fields=["stamps"])
                return taken, 0.0
            return 0, stamps[len(stamps) - capacity] + window - now


@lru_cache(maxsize=4)
def _limiter(path: str, redis_url: str, margin: float) -> SendRateLimiter:
    return import_string(path)()


def send_rate_limiter() -> SendRateLimiter:
    """The configured limiter (SEND_RATE_LIMITER), built once per process."""
    return _limiter(settings.SEND_RATE_LIMITER, settings.REDIS_URL, settings.SES_RATE_WINDOW_MARGIN)


class SendSlots:
    """Slots of the shared send rate, taken from the limiter a few per round trip.

    A round trip to the limiter per email would cost about as much as building the email. The
    slots are counted in the shared window from the moment they are taken, so they are only
    spent while fresh (SLOT_FRESH_FRACTION of the window's margin); a stale one is dropped
    unused. So a sender asks for no more than it has been spending in that time, judged by the
    pace of its recent sends: a worker waiting ~30 ms on each SES call takes one at a time and
    never uses up the window for slots it would drop, while a fast one takes up to
    SLOTS_PER_TAKE. At low rates (under 20/s) one slot is taken at a time, so one worker never
    holds what another could use.
    """

    def __init__(self, limiter, rate: float, clock=time.monotonic) -> None:
        self.limiter = limiter
        self.rate = rate
        self.clock = clock
        capacity, _ = window_for(rate, settings.SES_RATE_WINDOW_MARGIN)
        self.most_per_take = max(1, min(SLOTS_PER_TAKE, capacity // 10))
        self.fresh_for = settings.SES_RATE_WINDOW_MARGIN * SLOT_FRESH_FRACTION
        self.left = 0
        self.taken_at = 0.0
        self.last_take: float | None = None
        self.pace: float | None = None  # seconds between sends, averaged

    def _per_take(self) -> int:
        if not self.pace:
            return 1
        return max(1, min(self.most_per_take, int(self.fresh_for / self.pace)))

    def take(self, deadline: float) -> bool:
        """One slot, waiting for it if need be; False if `deadline` (monotonic) comes first."""
        now = self.clock()
        if self.last_take is not None:
            interval = now - self.last_take
            self.pace = interval if self.pace is None else 0.8 * self.pace + 0.2 * interval
        self.last_take = now
        if self.left and now - self.taken_at <= self.fresh_for:
            self.left -= 1
            return True
        taken = self.limiter.acquire(self.rate, timeout=max(0.0, deadline - now), count=self._per_take())
        if not taken:
            self.left = 0
            return False
        self.left, self.taken_at = taken - 1, self.clock()
        return True
