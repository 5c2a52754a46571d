"""A send rate shared by every worker on every machine, so SES never sees more than its maximum.

django-ses's own AUTO_THROTTLE counts sends in one process only; two workers would send twice
the allowed rate. Here every send has a slot on one schedule kept in Redis (when REDIS_URL is
set) or in the database. The rule (`schedule_book`): a slot comes no sooner than a full window
(the rate's second plus SES_RATE_WINDOW_MARGIN) after the slot `capacity` places before it, so
even sends reaching SES up to the margin off their slots never put capacity + 1 in one second.
Slots follow an even pace, `spacing` apart; when every sender was busy as some passed (a claim,
the gap between tasks, a CPU taken by something else) the next ones may come sooner, down to
half the spacing, until the pace is made up: the slots lost in the last MAKE_UP_S are sent, not
skipped, while an idle schedule saves up nothing. (Such a closer run of slots can recur
a second later, each slot's second being counted from the one `capacity` places before it; never
closer than half the spacing.) With the default 0.025 s margin the workers keep 97.6% of the
rate. A sender books its slot, sleeps until that instant and sends.

A send whose answer came back later than the margin after its slot's instant (a request stuck
on a busy machine, a slow network) may have reached SES that late, so the slot `capacity` places
after its own waits until a full second after that answer (`hold_back`): SES receives a request
between its sending and its answer, so no second ever holds more than the rate, however late a
request travels. A slot used more than half the margin late is dropped unused, not sent into a
crowded second (`SendSlots`), which also takes a few slots per round trip when sending fast. The
implementation is picked by the SEND_RATE_LIMITER setting; the stores are in rate_stores.py.
"""

import itertools
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Not the sliding window's key of earlier releases (a sorted set in Redis, a list of send times in
# the database): during a rolling deploy old and new workers then never misread each other's state.
# Workers of the releases since `hold_back`, before the recent slots were listed, keep the same
# pace and count under it, so during a rolling deploy old and new share one pace. The old ones do
# not list their slots among the recent ones (in the database they drop the list), so while both
# run, only the pace keeps the second: up to MAKE_UP_S of the rate more, or a held-back gap.
RATE_KEY = "horoscope:ses-send-schedule"
# A fast sender books at most this many slots per round trip, and no more than its slots span
# BLOCK_SPAN_S of the schedule: at 1,000/s that is nine slots a round trip, below 100/s one.
SLOTS_PER_TAKE = 20
BLOCK_SPAN_S = 0.010
# A slot is used at most this fraction of SES_RATE_WINDOW_MARGIN after its instant, or dropped:
# the rest of the margin is for the way from here to SES.
SLOT_FRESH_FRACTION = 0.5
# Slots that passed unused in the last MAKE_UP_S are made up, each at least MAKE_UP_SPACING of
# the spacing after the one before: a pause of the senders costs them nothing if it is shorter,
# and no two sends come closer. Skipping such slots kept 0.95-0.97 R at R = 200 (docs/benchmarks.md).
MAKE_UP_S = 0.1
MAKE_UP_SPACING = 0.5


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
    """Seconds between two slots at the even pace: `capacity` + 1 slots span more than the window,
    so even sends arriving up to `margin` apart from their instants never put capacity + 1 in one second."""
    capacity, window = window_for(rate, margin)
    return window / capacity


@dataclass(frozen=True)
class Schedule:
    """A send rate's shared state: the even pace's next instant, how many slots were booked so far,
    and the instants of the last `capacity` of them, oldest first (fewer while there were fewer)."""

    pace_at: float = 0.0
    booked: int = 0
    recent: tuple[float, ...] = ()


@dataclass(frozen=True)
class Booking:
    """What one booking took: its slots' instants (none if refused) and the schedule after it."""

    instants: tuple[float, ...]
    first_at: float  # the first slot's instant; if none was taken, when the first free one is
    first_index: int  # the first slot's place on the schedule (slots booked before it)
    schedule: Schedule

    @property
    def taken(self) -> int:
        return len(self.instants)


def schedule_book(
    schedule: Schedule, now: float, capacity: int, window: float, count: int, max_wait: float | None = None
) -> Booking:
    """Book `count` consecutive slots at `now`.

    Each slot comes no sooner than now, than a window after the slot `capacity` places before it,
    than half a spacing after the slot before it, and than the even pace, which lags `now` by at
    most MAKE_UP_S: slots that passed unused within that are made up, older ones are gone, and
    none once the last slot's window has ended (an idle schedule saves up nothing). Nothing
    is booked if the first slot is more than `max_wait` away. Both limiters follow this rule (the
    Redis script is its copy in Lua).
    """
    spacing = window / capacity
    # Once the last slot's window has ended the schedule was idle: nothing is made up.
    idle = not schedule.recent or schedule.recent[-1] + window <= now
    pace = max(schedule.pace_at, now if idle else now - MAKE_UP_S)
    # A slot whose window has ended holds back no later one: the oldest are let go (at a rate far
    # above what is sent, `capacity` instants would otherwise be kept).
    recent = list(itertools.dropwhile(lambda at: at + window <= now, schedule.recent))
    last = recent[-1] if recent else -math.inf
    instants: list[float] = []
    for i in range(count):
        at = max(now, pace + i * spacing, last + spacing * MAKE_UP_SPACING)
        partner = len(recent) - capacity  # the slot `capacity` places before this one
        if partner >= 0:
            at = max(at, recent[partner] + window)
        if not instants and max_wait is not None and at - now > max_wait:
            return Booking((), at, schedule.booked, schedule)
        instants.append(at)
        recent.append(at)
        last = at
    after = Schedule(pace + count * spacing, schedule.booked + count, tuple(recent[-capacity:]))
    return Booking(tuple(instants), instants[0], schedule.booked, after)


def schedule_hold_back(
    schedule: Schedule, index: int, not_before: float, capacity: int, window: float
) -> tuple[Schedule, bool]:
    """The schedule once the slot at place `index`, and so every later one, may come no earlier
    than `not_before`; and whether that was in time. If the slot `capacity` places before it is
    among the recent ones, its window ends no sooner than `not_before`; if `index` was booked
    already it stays as it is, and the next free slot comes at `not_before`. Both limiters
    follow this rule."""
    if index < schedule.booked:
        return replace(schedule, pace_at=max(schedule.pace_at, not_before)), False
    partner = index - capacity - (schedule.booked - len(schedule.recent))
    if 0 <= partner < len(schedule.recent):
        recent = list(schedule.recent)
        recent[partner] = max(recent[partner], not_before - window)
        return replace(schedule, recent=tuple(recent)), True
    spacing = window / capacity
    return replace(schedule, pace_at=max(schedule.pace_at, not_before - (index - schedule.booked) * spacing)), True


@dataclass(frozen=True)
class Reservation:
    """Slots booked for one sender: `taken` slots, the first `wait` seconds after the limiter read
    its clock during the call, each later one `offsets[i]` after the first. With none taken,
    `wait` is how far off the first free slot was."""

    taken: int
    wait: float
    spacing: float  # of the even pace
    first_index: int = 0  # the first slot's place on the schedule
    first_at: float = 0.0  # the first slot's instant on the schedule's clock (Unix seconds)
    offsets: tuple[float, ...] = ()


def reservation_of(booking: Booking, now: float, spacing: float) -> Reservation:
    offsets = tuple(at - booking.first_at for at in booking.instants)
    return Reservation(booking.taken, booking.first_at - now, spacing, booking.first_index, booking.first_at, offsets)


class SendRateLimiter(Protocol):
    def acquire(self, rate: float, count: int = 1, max_wait: float | None = None) -> Reservation:
        """Book `count` consecutive slots at `rate` per second (see `schedule_book`)."""
        ...

    def hold_back(self, rate: float, index: int, not_before: float) -> bool:
        """The slot at place `index` and every later one come at `not_before` (the schedule's
        clock) at the earliest (see `schedule_hold_back`); False if that slot was booked already."""
        ...


def __getattr__(name: str):
    # SEND_RATE_LIMITER paths of earlier releases name the stores here.
    if name in ("RedisRateLimiter", "DatabaseRateLimiter"):
        from forecasts.sending import rate_stores

        return getattr(rate_stores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    sends. Slots that passed while every sender was busy are made up by the schedule (its rule),
    so senders that come a little late do not leave the rate unused. A round trip to the limiter
    per email would cost about as much as building the email, so a fast sender books several
    consecutive slots at once; as many as it can use in time, judged by its own work per email
    (the time from one `take` returning to the next call): a sender slower than half the slots'
    spacing (as close as slots making up for lost ones come) falls a little further behind with
    each one, and books only as many as stay within
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
        # Per slot, when the sender is slower than the slots; slots making up for lost ones come
        # as close as MAKE_UP_SPACING of the spacing.
        falls_behind = self.work - self.spacing * MAKE_UP_SPACING
        if falls_behind <= 0:
            return self.most_per_take
        return max(1, min(self.most_per_take, 1 + int(self.late_by_at_most / falls_behind)))

    def _book(self, deadline: float) -> bool:
        asked_at = self.clock()
        count = self._per_take()
        booked = self.limiter.acquire(self.rate, count=count, max_wait=max(0.0, deadline - asked_at))
        answered_at = self.clock()
        self.instants.extend(
            Slot(
                index=booked.first_index + i,
                at=booked.first_at + offset,
                earliest=asked_at + booked.wait + offset,
                send_from=answered_at + booked.wait + offset,
            )
            for i, offset in enumerate(booked.offsets)
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
