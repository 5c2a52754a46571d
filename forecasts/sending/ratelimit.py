"""A send rate shared by every worker on every machine, so SES never sees more than its maximum.

django-ses's own AUTO_THROTTLE counts sends in one process only; two workers would send twice
the allowed rate. Here every send has a slot on one schedule kept in Redis (when REDIS_URL is
set) or in the database: each slot is an instant, the slots spaced evenly, `spacing` apart,
where `capacity` slots span the rate's second plus SES_RATE_WINDOW_MARGIN (`slot_spacing`). A
sender books its slot, sleeps until that instant and sends; so the sends are spread evenly over
the second instead of coming in bursts, and the margin absorbs the spread between a slot's
instant and the request reaching SES: with the default 0.025 s, the workers keep 97.6% of the
rate. A send whose answer came back later than the margin after its slot's instant (a request
stuck on a busy machine, a slow network) may have reached SES that late, so it holds back the
slot `capacity` places after its own until a full second after that answer (`hold_back`): SES
receives a request between its sending and its answer, so no second ever holds more than the
rate, however late a request travels. A slot used more than half the margin late is dropped
unused, not sent into a crowded second (`SendSlots`), which also takes a few slots per round trip
when sending fast. The implementation is picked by the SEND_RATE_LIMITER setting.
"""

import logging
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

logger = logging.getLogger(__name__)

# Not the sliding window's key of earlier releases (a sorted set in Redis, a list of send times in
# the database): during a rolling deploy old and new workers then never misread each other's state.
# (Workers older than `hold_back` do not count the slots they book, so while both run, a late
# answer holds back the schedule by less than it should.)
RATE_KEY = "horoscope:ses-send-schedule"
# A fast sender books at most this many slots per round trip, and no more than its slots span
# BLOCK_SPAN_S of the schedule: at 1,000/s that is ten slots a round trip, below 100/s one.
SLOTS_PER_TAKE = 20
BLOCK_SPAN_S = 0.010
# A slot is used at most this fraction of SES_RATE_WINDOW_MARGIN after its instant, or dropped:
# the rest of the margin is for the way from here to SES.
SLOT_FRESH_FRACTION = 0.5
# A slot that passed unused is still booked if it passed at most this fraction of that allowance
# ago. Booked alone it is used at once, so the rest covers the round trip to the limiter; booked
# with later slots, which the sender reaches later still, half. With two senders just above the
# rate, 0.8 instead of 0.5 kept 0.957 R at R = 200 where 0.92 R was kept (docs/benchmarks.md).
CATCH_UP_ALONE_FRACTION = 0.8
CATCH_UP_IN_BLOCK_FRACTION = 0.5


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
    first_index: int = 0  # the first slot's place on the schedule (slots booked before it)


def schedule_book(
    next_at: float,
    now: float,
    spacing: float,
    count: int,
    max_wait: float | None = None,
    catch_up: float = 0.0,
    booked: int = 0,
) -> Booking:
    """Book `count` consecutive slots of a schedule whose next free slot is at `next_at`, after
    `booked` slots booked so far.

    The first slot is the next free one; if that passed unused, the one `catch_up` seconds ago
    at most (used a little late, as any slot may be), so a sender that comes a moment late does
    not leave the slot unused; an idle schedule saves up no more for a burst. Nothing is booked
    if the first slot is more than `max_wait` away. Both limiters follow this rule (the Redis
    script is its copy in Lua).
    """
    first = max(next_at, now - catch_up)
    if max_wait is not None and first - now > max_wait:
        return Booking(0, first, next_at, booked)
    return Booking(count, first, first + count * spacing, booked)


def schedule_hold_back(next_at: float, booked: int, index: int, not_before: float, spacing: float) -> float:
    """The schedule's next free instant once the slot at place `index`, and so every later one,
    may come no earlier than `not_before`. Slots booked already stay as they are: if `index` is
    one of them, the next free slot comes at `not_before`. Both limiters follow this rule."""
    return max(next_at, not_before - max(0, index - booked) * spacing)


@dataclass(frozen=True)
class Reservation:
    """Slots booked for one sender: `taken` slots, the first `wait` seconds after the limiter read
    its clock during the call (negative: that long before), then one every `spacing` seconds.
    With none taken, `wait` is how far off the first free slot was."""

    taken: int
    wait: float
    spacing: float
    first_index: int = 0  # the first slot's place on the schedule
    first_at: float = 0.0  # the first slot's instant on the schedule's clock (Unix seconds)


class SendRateLimiter(Protocol):
    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None, catch_up: float = 0.0) -> Reservation:
        """Book `count` consecutive slots at `rate` per second (see `schedule_book`)."""
        ...

    def hold_back(self, rate: float, index: int, not_before: float) -> bool:
        """The slot at place `index` and every later one come at `not_before` (the schedule's
        clock) at the earliest (see `schedule_hold_back`); False if that slot was booked already."""
        ...


# Run inside Redis, so reading and moving the schedule is one atomic step for every worker.
# The clock is Redis's own (TIME), shared by all machines; times in microseconds. KEYS[1] holds
# the next free slot's instant, KEYS[2] how many slots were booked so far (a slot's place);
# ARGV[1] is the spacing. Then schedule_book in Lua; the wait is rounded up, so no slot is used early.
_SCHEDULE_STATE = """
local key, booked_key = KEYS[1], KEYS[2]
local spacing = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_at = tonumber(redis.call('GET', key) or '0')
local booked = tonumber(redis.call('GET', booked_key) or '0')
"""
_BOOK_SCRIPT = (
    _SCHEDULE_STATE
    + """
local count = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local catch_up = tonumber(ARGV[4])
local first = math.max(next_at, now - catch_up)
local wait = math.ceil(first - now)
if max_wait >= 0 and wait > max_wait then
  return {0, wait, booked, string.format('%.3f', first)}
end
local after = first + count * spacing
local ttl = math.ceil((after - now) / 1000) + 60000
redis.call('SET', key, string.format('%.3f', after), 'PX', ttl)
redis.call('SET', booked_key, booked + count, 'PX', ttl)
return {count, wait, booked, string.format('%.3f', first)}
"""
)

# schedule_hold_back in Lua.
_HOLD_BACK_SCRIPT = (
    _SCHEDULE_STATE
    + """
local index = tonumber(ARGV[2])
local not_before = tonumber(ARGV[3])
local wanted = not_before - math.max(0, index - booked) * spacing
if wanted > next_at then
  local ttl = math.max(0, math.ceil((wanted - now) / 1000)) + 60000
  redis.call('SET', key, string.format('%.3f', wanted), 'PX', ttl)
  redis.call('SET', booked_key, booked, 'PX', ttl)
end
if index >= booked then
  return 1
end
return 0
"""
)


class RedisRateLimiter:
    """The schedule in Redis (REDIS_URL): the instant of its next free slot, and how many were booked."""

    def __init__(self, url: str | None = None, key: str = RATE_KEY, margin: float | None = None) -> None:
        self.url = url or settings.REDIS_URL
        self.keys = [key, f"{key}:booked"]
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

    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None, catch_up: float = 0.0) -> Reservation:
        spacing = slot_spacing(rate, self.margin)
        limit_us = -1 if max_wait is None else int(max_wait * 1_000_000)
        args = [repr(spacing * 1_000_000), max(1, count), limit_us, int(catch_up * 1_000_000)]
        taken, wait_us, booked, first_us = self._scripts()[0](keys=self.keys, args=args)
        return Reservation(int(taken), int(wait_us) / 1_000_000, spacing, int(booked), float(first_us) / 1_000_000)

    def hold_back(self, rate: float, index: int, not_before: float) -> bool:
        spacing = slot_spacing(rate, self.margin)
        args = [repr(spacing * 1_000_000), index, repr(not_before * 1_000_000)]
        return bool(self._scripts()[1](keys=self.keys, args=args))


def _schedule_state(stamps: list) -> tuple[float, int]:
    """(next free instant, slots booked) from a SendRateWindow row; rows of earlier releases hold the instant only."""
    return (float(stamps[0]) if stamps else 0.0), (int(stamps[1]) if len(stamps) > 1 else 0)


class DatabaseRateLimiter:
    """The schedule in one locked row (no Redis: the embedded default).

    The row lock serialises workers (SELECT ... FOR UPDATE on PostgreSQL, an IMMEDIATE
    transaction on SQLite). Instants come from each machine's clock, so keep clocks in sync.
    The row's `stamps` holds the next free slot's instant (Unix seconds) and how many were booked.
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

    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None, catch_up: float = 0.0) -> Reservation:
        called = time.monotonic()
        spacing = slot_spacing(rate, self.margin)
        with transaction.atomic():
            row = self._locked_row()
            now = time.time()
            # Waiting for the row's lock took time already: the first slot is that much closer.
            max_wait = None if max_wait is None else max_wait - (time.monotonic() - called)
            next_at, booked = _schedule_state(row.stamps)
            booking = schedule_book(next_at, now, spacing, max(1, count), max_wait, catch_up, booked)
            if booking.taken:
                row.stamps = [booking.next_at, booked + booking.taken]
                row.save(update_fields=["stamps"])
        return Reservation(booking.taken, booking.first_at - now, spacing, booked, booking.first_at)

    def hold_back(self, rate: float, index: int, not_before: float) -> bool:
        spacing = slot_spacing(rate, self.margin)
        with transaction.atomic():
            row = self._locked_row()
            next_at, booked = _schedule_state(row.stamps)
            wanted = schedule_hold_back(next_at, booked, index, not_before, spacing)
            if wanted > next_at:
                row.stamps = [wanted, booked]
                row.save(update_fields=["stamps"])
        return index >= booked


@lru_cache(maxsize=4)
def _limiter(path: str, redis_url: str, margin: float) -> SendRateLimiter:
    return import_string(path)()


def send_rate_limiter() -> SendRateLimiter:
    """The configured limiter (SEND_RATE_LIMITER), built once per process."""
    return _limiter(settings.SEND_RATE_LIMITER, settings.REDIS_URL, settings.SES_RATE_WINDOW_MARGIN)


@dataclass(frozen=True)
class Slot:
    """One booked slot, as its sender sees it."""

    index: int  # its place on the shared schedule
    at: float  # its instant on the schedule's clock
    # Its instant on the sender's clock lies between these two: counted from when the sender asked
    # for it, and from when the answer came. Used no earlier than the later one, so never early.
    earliest: float
    send_from: float


class SendSlots:
    """One sender's slots of the shared schedule: booked a few per round trip, each used at its instant.

    `take` sleeps until the next slot's instant and returns the slot. A slot used more than
    `late_by_at_most` after its instant (a slow render, a pause, a wake-up the machine was too
    busy to give on time) is dropped unused: sent then, it would land among the next slots'
    sends. A slot a moment in the past that nobody took is booked as if on time (the catch-up),
    so senders that come a little late do not leave the schedule idle. A round trip to the limiter
    per email would cost about as much as building the email, so a fast sender books several
    consecutive slots at once; as many as it can use in time, judged by its own work per email
    (the time from one `take` returning to the next call): a sender slower than the slots'
    spacing falls a little further behind with each one, and books only as many as stay within
    `late_by_at_most`. At low rates (a slot every 10 ms or more) one slot is booked at a time, so
    one sender never holds what another could use. `answered` is told when each send's answer
    came, and holds back later slots if it came too late (module docstring).
    """

    def __init__(self, limiter, rate: float, clock=time.monotonic, sleep=time.sleep) -> None:
        self.limiter = limiter
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.margin = settings.SES_RATE_WINDOW_MARGIN
        self.capacity, window = window_for(rate, self.margin)
        self.second = window - self.margin  # the span `capacity` sends may never fall within
        self.spacing = window / self.capacity
        self.late_by_at_most = self.margin * SLOT_FRESH_FRACTION
        self.catch_up_alone = self.late_by_at_most * CATCH_UP_ALONE_FRACTION
        self.catch_up_in_block = self.late_by_at_most * CATCH_UP_IN_BLOCK_FRACTION
        self.most_per_take = max(1, min(SLOTS_PER_TAKE, int(BLOCK_SPAN_S / self.spacing)))
        self.instants: deque[Slot] = deque()  # this sender's booked slots
        self.dropped = 0
        self.held_back = 0  # sends answered too late, which held back the slots a second on
        self.held_back_too_late = 0  # ...of which the slot to hold back had been booked already
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
        count = self._per_take()
        catch_up = self.catch_up_alone if count == 1 else self.catch_up_in_block
        booked = self.limiter.acquire(self.rate, count=count, max_wait=max(0.0, deadline - asked_at), catch_up=catch_up)
        answered_at = self.clock()
        self.instants.extend(
            Slot(
                index=booked.first_index + i,
                at=booked.first_at + i * booked.spacing,
                earliest=asked_at + booked.wait + i * booked.spacing,
                send_from=answered_at + booked.wait + i * booked.spacing,
            )
            for i in range(booked.taken)
        )
        return bool(booked.taken)

    def take(self, deadline: float) -> Slot | None:
        """Wait for this sender's next slot and return it; None if `deadline` (on `clock`) comes first."""
        now = self.clock()
        if self.returned_at is not None:
            work = now - self.returned_at
            self.work = work if self.work is None else 0.8 * self.work + 0.2 * work
        while True:
            while self.instants and self.instants[0].send_from < self.clock() - self.late_by_at_most:
                self.instants.popleft()
                self.dropped += 1
            if not self.instants and not self._book(deadline):
                return None
            slot = self.instants[0]
            if slot.send_from > deadline:
                self.instants.clear()
                return None
            wait = slot.send_from - self.clock()
            if wait > 0:
                self.sleep(wait)
            if self.clock() - slot.send_from <= self.late_by_at_most:  # else woken too late: dropped above
                self.instants.popleft()
                self.returned_at = self.clock()
                return slot

    def answered(self, slot: Slot, at: float | None = None) -> None:
        """The send that used `slot` had its answer (or gave up on it) at `at` (on `clock`; None:
        now): SES had received it by then.

        If that is more than the margin after the slot's instant, the slot `capacity` places on,
        and every later one, waits until a full second after it; the schedule's spacing already
        keeps them that far apart when the answer comes within the margin. Call it before that
        slot is booked: within a second of the answer, less the time it takes to book slots.
        """
        late_by = (self.clock() if at is None else at) - slot.earliest  # at least, on the schedule's clock
        if late_by <= self.margin:
            return
        try:
            in_time = self.limiter.hold_back(self.rate, slot.index + self.capacity, slot.at + self.second + late_by)
        except Exception:
            logger.warning("Could not hold back the send rate's schedule after a late answer", exc_info=True)
            in_time = False
        self.held_back += 1
        self.held_back_too_late += not in_time
