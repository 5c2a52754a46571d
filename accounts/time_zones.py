"""Time zones as people know them: by city, with the offset their clocks show today. Pure, no ORM.

The list offered is the IANA zone table (zone.tab, one main city per zone, ~420 of them) from the
`tzdata` package, so it is the same on every machine. Any zone name zoneinfo knows is still
accepted (older accounts may hold an alias such as US/Eastern).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib.resources import files

from accounts.scheduling import known_time_zones, zone

# Longer text is not a zone name, whatever it holds.
MAX_TYPED_LENGTH = 100


@dataclass(frozen=True)
class ZoneChoice:
    name: str  # IANA, e.g. America/New_York
    city: str  # New York
    country: str  # United States ("" for UTC)


def _tab_rows(file_name: str) -> list[list[str]]:
    text = (files("tzdata.zoneinfo") / file_name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def city_of(name: str) -> str:
    """The place a zone is named after: America/Argentina/Buenos_Aires -> Buenos Aires."""
    return name.rsplit("/", 1)[-1].replace("_", " ")


@lru_cache(maxsize=1)
def zone_choices() -> tuple[ZoneChoice, ...]:
    """Every zone in the IANA table with its city and country, sorted by city; UTC first."""
    countries = {row[0]: row[1] for row in _tab_rows("iso3166.tab")}
    known = known_time_zones()
    choices = {
        row[2]: ZoneChoice(row[2], city_of(row[2]), countries.get(row[0], ""))
        for row in _tab_rows("zone.tab")
        if row[2] in known
    }
    return (ZoneChoice("UTC", "UTC", ""), *sorted(choices.values(), key=lambda choice: choice.city))


def offset_text(offset: timedelta) -> str:
    """UTC-5, UTC+5:30, UTC+0."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def zone_label(name: str, now: datetime | None = None) -> str:
    """'New York (UTC-5)': the city and the offset its clocks show at `now` (default: now)."""
    if name == "UTC":
        return "UTC"
    now = now or datetime.now(UTC)
    offset = now.astimezone(zone(name)).utcoffset() or timedelta(0)
    place = city_of(name) if name in _choices_by_name() else name.replace("_", " ")
    return f"{place} ({offset_text(offset)})"


@lru_cache(maxsize=1)
def _choices_by_name() -> dict[str, ZoneChoice]:
    return {choice.name: choice for choice in zone_choices()}


@lru_cache(maxsize=1)
def zone_aliases() -> dict[str, str]:
    """Other names of listed zones, to the listed name: Asia/Calcutta -> Asia/Kolkata, US/Eastern -> ...

    Browsers report some zones by their older name (Chromium says Asia/Calcutta).
    """
    text = (files("tzdata.zoneinfo") / "tzdata.zi").read_text(encoding="utf-8")
    links = (line.split() for line in text.splitlines() if line.startswith("L "))
    listed, known = _choices_by_name(), known_time_zones()
    return {alias: target for _, target, alias in links if target in listed and alias in known and alias not in listed}


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").casefold().split())


@lru_cache(maxsize=1)
def _names_by_key() -> dict[str, str]:
    """Lower-case city, country (when it has one zone) and full names, each to its zone."""
    by_country: dict[str, list[str]] = {}
    for choice in zone_choices():
        by_country.setdefault(_key(choice.country), []).append(choice.name)
    names = {key: zones[0] for key, zones in by_country.items() if key and len(zones) == 1}
    names.update({_key(choice.city): choice.name for choice in zone_choices()})
    names.update({_key(name): zone_aliases().get(name, name) for name in known_time_zones()})
    return names


_OFFSET_SUFFIX = re.compile(r"\s*\((?:UTC|GMT)[^)]*\)\s*$", re.I)


def zone_from_text(text: str) -> str | None:
    """The zone a person typed or picked, or None.

    Takes an IANA name ("America/New_York"; an alias gives the listed name), a label from the
    list ("New York (UTC-5)", any offset: the one shown may have changed since), a city
    ("new york"), "City, Country", or a country with a single zone ("Japan").
    """
    text = text.strip()
    if not text or len(text) > MAX_TYPED_LENGTH:
        return None
    if text in known_time_zones():
        return zone_aliases().get(text, text)
    text = _OFFSET_SUFFIX.sub("", text)
    names = _names_by_key()
    for candidate in (text, text.split(",", 1)[0]):
        name = names.get(_key(candidate))
        if name:
            return name
    return None
