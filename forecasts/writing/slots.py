"""Time slots: how a reading shared by every time zone still tells each reader *when*.

A reading is one text per sign and date, read in every zone from UTC-12 to UTC+14, so it never
writes "today", "tonight" or a clock time itself. Where an event's timing matters, the text
carries a slot instead, tied to the event's UTC instant:

    "Venus slips into your partnership zone [[at:2026-12-05T14:10Z]]."

and each reader's email or page fills it in their own zone:

    "... at 14:10 this afternoon."   (Europe/London)
    "... at 01:10 tomorrow morning." (Pacific/Auckland)

The word before the time (at, from, until, after, before, by) is part of the slot, so the
phrase stays grammatical whatever day the instant falls on for the reader. Pure functions only.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

SLOT_WORDS = ("at", "from", "until", "after", "before", "by")
SLOT_RE = re.compile(r"\[\[(?P<word>at|from|until|after|before|by):(?P<when>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z)\]\]")


@dataclass(frozen=True)
class Slot:
    word: str
    instant: datetime
    span: tuple[int, int]


def slot(word: str, instant: datetime | str) -> str:
    """The slot token for `instant` (a datetime or an ISO string), to the minute, in UTC."""
    if word not in SLOT_WORDS:
        raise ValueError(f"unknown slot word {word!r}")
    when = parse_instant(instant) if isinstance(instant, str) else instant.astimezone(UTC)
    if when is None:
        raise ValueError(f"not an ISO instant: {instant!r}")
    return f"[[{word}:{when:%Y-%m-%dT%H:%MZ}]]"


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 string as an aware UTC datetime rounded down to the minute; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.replace(second=0, microsecond=0)


def slots_in(text: str) -> list[Slot]:
    """Every slot in `text`, in order."""
    found = []
    for match in SLOT_RE.finditer(text or ""):
        instant = parse_instant(match["when"])
        if instant is not None:
            found.append(Slot(match["word"], instant, match.span()))
    return found


def day_part(local: datetime, local_date: date) -> str:
    """Words for when a local time falls, relative to the reader's date: 'this afternoon',
    'tomorrow morning', 'last night', or a date further off."""
    hour = local.hour
    offset = (local.date() - local_date).days
    if offset == 0:
        if hour < 5:
            return "in the small hours"
        if hour < 12:
            return "this morning"
        if hour < 17:
            return "this afternoon"
        if hour < 21:
            return "this evening"
        return "tonight"
    if offset == 1:
        if hour < 5:
            return "in the small hours of tomorrow"
        if hour < 12:
            return "tomorrow morning"
        return "tomorrow afternoon" if hour < 17 else "tomorrow evening"
    if offset == -1:
        if hour >= 21:
            return "last night"
        return "yesterday evening" if hour >= 17 else "yesterday"
    return f"on {local:%A} {local.day} {local:%B}"


def render_slot(word: str, instant: datetime, zone: tzinfo, local_date: date) -> str:
    """'at 14:10 this afternoon' for a reader in `zone` whose reading is for `local_date`."""
    local = instant.astimezone(zone)
    return f"{word} {local:%H:%M} {day_part(local, local_date)}"


def fill_slots(text: str, zone: tzinfo, local_date: date) -> str:
    """`text` with every slot written for a reader in `zone` on `local_date`; in UTC (a page
    whose visitor gave no zone) the zone is named instead ("at 14:10 UTC"), as no one lives there."""
    if getattr(zone, "key", None) == "UTC" or zone is UTC:
        return strip_slots(text)
    return replace_slots(text, lambda found: render_slot(found.word, found.instant, zone, local_date))


def replace_slots(text: str, write: Callable[[Slot], str]) -> str:
    """`text` with each slot replaced by `write(slot)` (a renderer, a placeholder, a neutral mark)."""
    if "[[" not in (text or ""):
        return text
    out, last = [], 0
    for found in slots_in(text):
        out += [text[last : found.span[0]], write(found)]
        last = found.span[1]
    out.append(text[last:])
    return "".join(out)


def strip_slots(text: str) -> str:
    """`text` with each slot reduced to its word and a neutral UTC time ('at 14:10 UTC'), for
    places that know no reader (the admin's list, logs)."""
    return replace_slots(text, lambda found: f"{found.word} {found.instant:%H:%M} UTC")
