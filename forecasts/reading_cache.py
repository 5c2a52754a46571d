"""What pages build from a sign's Forecast rows, kept in the Django cache (Redis in production),
and the one way to say those rows changed.

Each sign has a version number in the cache. Every entry built from a sign's rows is stored
with the version read *before* the rows were read, and is used only while that version is still
the sign's current one. Anything that changes a sign's rows calls `forecasts_changed(signs)`:
the model's save and delete signals (the admin's change form, deletes), and the code paths that
write with QuerySet.update(), which sends no signal (the admin's approve action, generation's
claim and save in forecasts/writing/generation.py). The version moves at once (so the same
transaction's next read rebuilds) and again after the commit, so a reader that read the old rows
just before the commit cannot leave them behind under the new version.

Entries also expire after settings.PAGE_CACHE_SECONDS, a bound on staleness should an
invalidation ever be lost (Redis unreachable for a moment, or a cache in one process's memory
when there is no REDIS_URL). A cache that cannot be reached is a miss, never a failed page.
"""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)

# Part of every key: entries pickled by an older layout of what is cached are never read.
KEY_PREFIX = "pages:1"
MISSING = object()


def version_key(sign: str) -> str:
    return f"{KEY_PREFIX}:version:{sign}"


def _fresh_version() -> int:
    # Never a number an evicted version key held before: entries under it could still be there.
    return time.time_ns()


def _bump(signs: Iterable[str]) -> None:
    for sign in signs:
        key = version_key(sign)
        try:
            try:
                cache.incr(key)
            except ValueError:  # no version yet (or evicted): any new number will do
                cache.set(key, _fresh_version(), timeout=None)
        except Exception:
            logger.exception("Could not move the page cache version of %s: its pages may lag", sign)


def _first_version(sign: str) -> int:
    """The sign's version when the cache has none yet: ours, or one another process set first."""
    cache.add(version_key(sign), _fresh_version(), timeout=None)
    return cache.get(version_key(sign)) or 0


def forecasts_changed(signs: Iterable[str]) -> None:
    """The Forecast rows of `signs` changed (text, status, a row added or deleted): every page
    entry built from them is rebuilt on its next read."""
    signs = sorted(set(signs))
    if connection.in_atomic_block:
        _bump(signs)
    transaction.on_commit(lambda: _bump(signs))


def get_versioned(sign: str, key: str, *, shared: bool = True) -> tuple[object, int]:
    """(the entry at `key` if built under the sign's current version, else MISSING; that version).

    One round trip to the cache, for the version alone when this process already holds the
    entry. Read the version before the rows an entry is built from. With `shared=False`, only an
    entry this process holds counts (one kept by `hold`, never in the shared cache).
    """
    held = _held_fresh(key)
    try:
        if held is None and shared:
            found = cache.get_many([version_key(sign), key])
            version, entry = found.get(version_key(sign)), found.get(key)
        else:
            version, entry = cache.get(version_key(sign)), None
            if shared and version is not None and held[0] != version:
                entry = cache.get(key)  # changed since this process took it: another may have rebuilt it
        if version is None:
            return MISSING, _first_version(sign)
    except Exception:
        logger.warning("The page cache is unreachable: building %s without it", key, exc_info=True)
        return MISSING, 0
    if held is not None and held[0] == version:
        return held[1], version
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == version:
        _hold(key, version, entry[1])
        return entry[1], version
    return MISSING, version


def hold(key: str, version: int, value: object) -> None:
    """Keep `value`, built from rows read after `version` was read, in this process only."""
    if version:  # else the cache was unreachable when the version was read
        _hold(key, version, value)


def set_versioned(key: str, version: int, value: object) -> None:
    """Store `value`, built from rows read after `version` was read."""
    if not version:
        return  # the cache was unreachable when the version was read
    _hold(key, version, value)
    try:
        cache.set(key, (version, value), timeout=settings.PAGE_CACHE_SECONDS)
    except Exception:
        logger.warning("The page cache is unreachable: %s not kept", key, exc_info=True)


# Entries this process has read or built, by key: (version, value, expiry). Used only while the
# version in the shared cache is still theirs (and as long as the shared entry lives), so they
# save fetching and unpickling an entry, never freshness.
_held: OrderedDict[str, tuple[int, object, float]] = OrderedDict()
_held_lock = threading.Lock()
HELD_ENTRIES = 256


def forget_held() -> None:
    """Drop what this process holds (tests: versions made under a frozen clock can repeat)."""
    with _held_lock:
        _held.clear()


def _held_fresh(key: str) -> tuple[int, object, float] | None:
    held = _held.get(key)
    return held if held is not None and held[2] >= time.monotonic() else None


def _hold(key: str, version: int, value: object) -> None:
    with _held_lock:
        _held[key] = (version, value, time.monotonic() + settings.PAGE_CACHE_SECONDS)
        _held.move_to_end(key)
        while len(_held) > HELD_ENTRIES:
            _held.popitem(last=False)


def _on_forecast_saved_or_deleted(sender, instance, **kwargs) -> None:
    forecasts_changed([instance.sign])


def connect_signals() -> None:
    from forecasts.models import Forecast

    post_save.connect(_on_forecast_saved_or_deleted, sender=Forecast, dispatch_uid="reading_cache_save")
    post_delete.connect(_on_forecast_saved_or_deleted, sender=Forecast, dispatch_uid="reading_cache_delete")
