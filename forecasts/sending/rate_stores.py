"""The shared send rate's two stores: a schedule in Redis (REDIS_URL) and one in a database row.

Both keep the rule of forecasts/sending/ratelimit.py (`schedule_book`, `schedule_hold_back`):
the Redis scripts are its copy in Lua, the row applies the Python functions under a lock.
"""

import threading
import time

from django.conf import settings
from django.db import IntegrityError, transaction

from forecasts.sending.ratelimit import (
    MAKE_UP_S,
    MAKE_UP_SPACING,
    RATE_KEY,
    Booking,
    Reservation,
    Schedule,
    reservation_of,
    schedule_book,
    schedule_hold_back,
    slot_spacing,
    window_for,
)

# Run inside Redis, so reading and moving the schedule is one atomic step for every worker.
# The clock is Redis's own (TIME), shared by all machines; times in microseconds. KEYS[1] holds
# the pace's next instant, KEYS[2] how many slots were booked so far (a slot's place), KEYS[3]
# the list of the last `capacity` slots' instants; ARGV[1] is the capacity, ARGV[2] the window.
# Every write keeps the three a minute past the last slot.
_SCHEDULE_STATE = """
local pace_key, booked_key, recent_key = KEYS[1], KEYS[2], KEYS[3]
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local spacing = window / capacity
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pace_at = tonumber(redis.call('GET', pace_key) or '0')
local booked = tonumber(redis.call('GET', booked_key) or '0')
local held = redis.call('LLEN', recent_key)
local function keep(pace, count, last_at)
  local ttl = math.max(0, math.ceil((last_at - now) / 1000)) + 60000
  redis.call('SET', pace_key, string.format('%.3f', pace), 'PX', ttl)
  redis.call('SET', booked_key, count, 'PX', ttl)
  if redis.call('EXISTS', recent_key) == 1 then
    redis.call('PEXPIRE', recent_key, ttl)
  end
end
"""
# schedule_book in Lua; returns {taken, now, first index, instants...} (instants as strings).
_BOOK_SCRIPT = (
    _SCHEDULE_STATE
    + """
local count = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local make_up = tonumber(ARGV[5])
local least_gap = spacing * tonumber(ARGV[6])
local last = -math.huge
if held > 0 then
  last = tonumber(redis.call('LINDEX', recent_key, -1))
end
local pace = math.max(pace_at, now - make_up)
if last + window <= now then
  pace = math.max(pace_at, now)
end
local first_partner = held - capacity
local lo, hi = math.max(0, first_partner), math.min(held - 1, first_partner + count - 1)
local stored = {}
if hi >= lo then
  stored = redis.call('LRANGE', recent_key, lo, hi)
end
local instants = {}
for i = 0, count - 1 do
  local at = math.max(now, pace + i * spacing, last + least_gap)
  local partner = first_partner + i
  if partner >= 0 then
    if partner < held then
      at = math.max(at, tonumber(stored[partner - lo + 1]) + window)
    else
      at = math.max(at, instants[partner - held + 1] + window)
    end
  end
  if i == 0 and max_wait >= 0 and at - now > max_wait then
    return {0, string.format('%.3f', now), booked, string.format('%.3f', at)}
  end
  instants[i + 1] = at
  last = at
end
-- Slots whose windows have ended hold back no later one: let go, as in schedule_book (which
-- drops them before finding the partners; they cannot move a slot that comes no sooner than now).
while held > 0 and tonumber(redis.call('LINDEX', recent_key, 0)) + window <= now do
  redis.call('LPOP', recent_key)
  held = held - 1
end
local reply = {count, string.format('%.3f', now), booked}
for i = 1, count do
  local at = string.format('%.3f', instants[i])
  redis.call('RPUSH', recent_key, at)
  reply[i + 3] = at
end
redis.call('LTRIM', recent_key, -capacity, -1)
keep(pace + count * spacing, booked + count, last)
return reply
"""
)

# schedule_hold_back in Lua.
_HOLD_BACK_SCRIPT = (
    _SCHEDULE_STATE
    + """
local index = tonumber(ARGV[3])
local not_before = tonumber(ARGV[4])
if index < booked then
  if not_before > pace_at then
    keep(not_before, booked, not_before)
  end
  return 0
end
local partner = index - capacity - (booked - held)
if partner >= 0 and partner < held then
  if not_before - window > tonumber(redis.call('LINDEX', recent_key, partner)) then
    redis.call('LSET', recent_key, partner, string.format('%.3f', not_before - window))
    keep(pace_at, booked, not_before)
  end
  return 1
end
local wanted = not_before - (index - booked) * spacing
if wanted > pace_at then
  keep(wanted, booked, not_before)
end
return 1
"""
)


class RedisRateLimiter:
    """The schedule in Redis (REDIS_URL): the pace's next instant, how many slots were booked, the recent ones."""

    def __init__(self, url: str | None = None, key: str = RATE_KEY, margin: float | None = None) -> None:
        self.url = url or settings.REDIS_URL
        self.keys = [key, f"{key}:booked", f"{key}:recent"]
        self.margin = settings.SES_RATE_WINDOW_MARGIN if margin is None else margin
        self._local = threading.local()

    def _scripts(self):
        # One client per thread (and so per forked worker child, which starts with no threads' state).
        scripts = getattr(self._local, "scripts", None)
        if scripts is None:
            import redis

            client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
            scripts = self._local.scripts = (
                client.register_script(_BOOK_SCRIPT),
                client.register_script(_HOLD_BACK_SCRIPT),
            )
        return scripts

    def _rate_args(self, rate: float) -> list:
        capacity, window = window_for(rate, self.margin)
        return [capacity, repr(window * 1_000_000)]

    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None) -> Reservation:
        limit_us = -1 if max_wait is None else max(0.0, max_wait) * 1_000_000  # -1: no limit
        args = [*self._rate_args(rate), max(1, count), repr(limit_us), repr(MAKE_UP_S * 1_000_000), MAKE_UP_SPACING]
        taken, now_us, booked, *instants_us = self._scripts()[0](keys=self.keys, args=args)
        now = float(now_us) / 1_000_000
        instants = tuple(float(at) / 1_000_000 for at in instants_us)
        # Refused, the one instant is when the first free slot would be. (The schedule itself
        # stays in Redis.)
        booking = Booking(instants if int(taken) else (), instants[0], int(booked), Schedule())
        return reservation_of(booking, now, slot_spacing(rate, self.margin))

    def hold_back(self, rate: float, index: int, not_before: float) -> bool:
        args = [*self._rate_args(rate), index, repr(not_before * 1_000_000)]
        return bool(self._scripts()[1](keys=self.keys, args=args))


def _schedule_of(stamps: list) -> Schedule:
    """A SendRateWindow row's schedule: [pace, booked, recent instants...]; rows of earlier
    releases hold the instant of their next free slot, then (since `hold_back`) the count."""
    if not stamps:
        return Schedule()
    return Schedule(float(stamps[0]), int(stamps[1]) if len(stamps) > 1 else 0, tuple(map(float, stamps[2:])))


class DatabaseRateLimiter:
    """The schedule in one locked row (no Redis: the embedded default).

    The row lock serialises workers (SELECT ... FOR UPDATE on PostgreSQL, an IMMEDIATE
    transaction on SQLite). Instants come from each machine's clock, so keep clocks in sync.
    The row's `stamps` holds the pace's next instant (Unix seconds), how many slots were booked
    and the instants of the last second's slots, up to the rate's count: each booking rewrites
    them, so at rates of many hundreds a second use Redis.
    """

    def __init__(self, key: str = RATE_KEY, margin: float | None = None) -> None:
        self.key = key
        self.margin = settings.SES_RATE_WINDOW_MARGIN if margin is None else margin

    def _locked_row(self):
        from forecasts.models import SendRateWindow

        row = SendRateWindow.objects.select_for_update().filter(key=self.key).first()
        if row is None:
            try:
                with transaction.atomic():
                    SendRateWindow.objects.create(key=self.key)
            except IntegrityError:  # another worker made it first
                pass
            row = SendRateWindow.objects.select_for_update().get(key=self.key)
        return row

    @staticmethod
    def _save(row, schedule: Schedule) -> None:
        row.stamps = [schedule.pace_at, schedule.booked, *schedule.recent]
        row.save(update_fields=["stamps"])

    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None) -> Reservation:
        called = time.monotonic()
        capacity, window = window_for(rate, self.margin)
        with transaction.atomic():
            row = self._locked_row()
            now = time.time()
            # Waiting for the row's lock took time already: the first slot is that much closer.
            max_wait = None if max_wait is None else max_wait - (time.monotonic() - called)
            booking = schedule_book(_schedule_of(row.stamps), now, capacity, window, max(1, count), max_wait)
            if booking.taken:
                self._save(row, booking.schedule)
        return reservation_of(booking, now, window / capacity)

    def hold_back(self, rate: float, index: int, not_before: float) -> bool:
        capacity, window = window_for(rate, self.margin)
        with transaction.atomic():
            row = self._locked_row()
            schedule = _schedule_of(row.stamps)
            held_back, in_time = schedule_hold_back(schedule, index, not_before, capacity, window)
            if held_back != schedule:
                self._save(row, held_back)
        return in_time
