"""Who holds a delivery or a forecast claim, and whether that holder is lost.

A holder is named "<worker node name>/<pid>" by the process that claims (a pool child while
sending or writing a forecast), or "<worker node name>" by the worker's main process for the
deliveries of a send task it received. Each worker's heartbeat row lists its processes
(forecasts/sending/heartbeats.py), so a holder is lost when:
- its worker's heartbeat is older than WORKER_LOST_SECONDS (the whole worker died or is cut off), or
- its worker beats, the beat came after the claim, and the pid is no longer among the worker's
  processes (a pool child was killed; the worker replaced it).
Outside a Celery worker (manage.py, the tests, eager mode) the node name is this machine's; no
heartbeat names it, so such a holder is never declared lost: the stuck sweep looks after it.

Public: `this_holder`, `this_worker`, `set_worker_name`, `Holders`.
"""

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from forecasts.models import WorkerHeartbeat

_worker_name: str | None = None


def set_worker_name(name: str) -> None:
    """Called in a worker's main process before the pool forks: its children inherit the name."""
    global _worker_name
    _worker_name = name


def this_worker() -> str:
    """This process's worker node name (the machine's name outside a Celery worker)."""
    return _worker_name or f"process@{socket.gethostname()}"


def this_holder() -> str:
    """The holder name this process writes when it claims: worker and pid."""
    return f"{this_worker()}/{os.getpid()}"


def split_holder(holder: str) -> tuple[str, int | None]:
    worker, _, pid = holder.rpartition("/")
    if not worker or not pid.isdigit():
        return holder, None
    return worker, int(pid)


def lost_after() -> timedelta:
    """A heartbeat older than this means the worker is lost (the /healthz rule: three beats)."""
    return timedelta(seconds=settings.WORKER_LOST_SECONDS)


@dataclass(frozen=True)
class _Beat:
    beat_at: datetime
    pids: frozenset[int]


class Holders:
    """The workers' heartbeats as read once, to judge many holders without another query."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.beats = {
            row.hostname: _Beat(row.beat_at, frozenset(int(p) for p in row.pids or () if str(p).isdigit()))
            for row in WorkerHeartbeat.objects.only("hostname", "beat_at", "pids")
        }

    def whole_worker_lost(self, holder: str) -> bool:
        """Has the holder's whole worker gone silent (dead, or cut off from the database)?"""
        beat = self.beats.get(split_holder(holder)[0])
        return beat is not None and beat.beat_at < self.now - lost_after()

    def lost_before(self, holder: str) -> datetime | None:
        """Is `holder` lost? If so, what it took before the returned instant is no longer in its hands.

        A silent worker: everything (now). A pool child whose pid its worker no longer lists: what
        it took before that beat (a claim after the beat may be a new child's, not yet listed).
        """
        worker, pid = split_holder(holder)
        beat = self.beats.get(worker)
        if beat is None:
            return None  # not a worker that beats: nothing tells us it is gone
        if self.whole_worker_lost(holder):
            return self.now
        if pid is not None and beat.pids and pid not in beat.pids:
            return beat.beat_at
        return None
