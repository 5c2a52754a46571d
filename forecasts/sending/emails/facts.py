"""A forecast's sky facts as lines of text, each instant kept apart to be shown in the reader's zone.

"In the sky" shows what happens from the reader's delivery time (on a page: the start of their
day) to the end of their local day: the daily email, the pages and the API show the same lines
(forecasts/templatetags/forecast_tags.py, forecasts/web/api.py).
"""

import re
import string
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from accounts.scheduling import zone
from forecasts.writing.facts import fact_in_window

MAX_FACTS = 8
MAX_FACTS_PER_KIND = 4

# A summary_template slot is a plain number: "{0}", never "{}", "{when}" or "{0.year}".
TEMPLATE_SLOT_RE = re.compile(r"[0-9]{1,3}")
# Instants a reader's zone can shift by up to a day and still be a datetime.
EARLIEST_INSTANT = datetime.min.replace(tzinfo=UTC) + timedelta(days=2)
LATEST_INSTANT = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)


@dataclass(frozen=True)
class FactLine:
    """A sky fact as text with its instants kept apart, to be shown in each reader's time zone."""

    segments: tuple[str | datetime, ...]

    @property
    def times(self) -> list[datetime]:
        return [segment for segment in self.segments if isinstance(segment, datetime)]

    def render(self, label) -> str:
        """The sentence with each instant written by `label(instant, in_parentheses)`."""
        out: list[str] = []
        for segment in self.segments:
            if isinstance(segment, str):
                out.append(segment)
            else:
                text = "".join(out)
                out.append(label(segment, text.count("(") > text.count(")")))
        return "".join(out)


def _parse_time(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if EARLIEST_INSTANT <= parsed <= LATEST_INSTANT else None


def _template_segments(template, instants) -> list[str | datetime] | None:
    """A summary_template's text with its {0}, {1}... slots filled by `instants`, or None unless
    every slot is a plain in-range number, every instant fills one, and each is an ISO time."""
    if not isinstance(template, str) or not template.strip() or not isinstance(instants, list):
        return None
    times = [_parse_time(value) for value in instants]
    if None in times:
        return None
    segments: list[str | datetime] = []
    slots: list[int] = []
    try:
        for text, slot, spec, conversion in string.Formatter().parse(template):
            segments.append(text)
            if slot is None:
                continue
            if not TEMPLATE_SLOT_RE.fullmatch(slot) or spec or conversion or int(slot) >= len(times):
                return None
            slots.append(int(slot))
            segments.append(times[int(slot)])
    except ValueError:  # an unmatched brace
        return None
    return segments if sorted(slots) == list(range(len(times))) else None


def _fact_text(fact: dict) -> str:
    summary = str(fact.get("summary") or "").strip()
    if summary:
        return summary
    # forecasts/writing/transit_facts.py always writes a summary; compose a plain one if a fact has none.
    bodies = fact.get("bodies") or []
    if isinstance(bodies, str):
        bodies = [bodies]
    words = [str(body).replace("_", " ").title() for body in bodies]
    if fact.get("aspect") and len(words) == 2:
        words = [words[0], str(fact["aspect"]), words[1]]
    if fact.get("sign"):
        words += ["in", str(fact["sign"]).title()]
    text = " ".join(words) or str(fact.get("kind") or "").replace("_", " ").capitalize()
    return text + "." if text else ""


def fact_line(fact: dict) -> FactLine | None:
    """One fact as a FactLine: the instants its summary names (from summary_template and
    instants) kept apart from the text; with none, its `time` if it has one."""
    if fact.get("summary_template") is not None or fact.get("instants") is not None:
        segments = _template_segments(fact.get("summary_template"), fact.get("instants"))
        if segments is None:
            # Stored values that do not fit together: show the summary as written (its times in
            # UTC) rather than fail a page or a send over one fact.
            text = _fact_text(fact)
            return FactLine((text,)) if text else None
    else:
        # Shown as written: no times are read out of the words (migration 0006 gave every stored
        # fact with a summary its summary_template and instants).
        text = _fact_text(fact)
        if not text:
            return None
        segments = [text]
    instant = _parse_time(fact.get("time"))
    if instant is not None and not any(isinstance(segment, datetime) for segment in segments):
        segments = ["".join(segments).rstrip(". "), " at ", instant, "."]
    return FactLine(tuple(segment for segment in segments if segment != ""))


def ranked_fact_lines(facts) -> list[tuple[dict, FactLine]]:
    """Every fact with its line, highest rank first (the order forecasts/writing/transit_facts.py gives them)."""
    if not isinstance(facts, list):
        return []

    def rank(fact: dict) -> float:
        value = fact.get("rank")
        return -float(value) if isinstance(value, int | float) else 0.0

    ranked = []
    for fact in sorted((f for f in facts if isinstance(f, dict)), key=rank):
        line = fact_line(fact)
        if line is not None:
            ranked.append((fact, line))
    return ranked


def visible_lines(
    ranked: list[tuple[dict, FactLine]], start: datetime | None = None, end: datetime | None = None
) -> list[int]:
    """Which of `ranked` a reader sees for [start, end) (their delivery time to the end of their
    day; without them, the forecast's whole window): at most MAX_FACTS, and MAX_FACTS_PER_KIND of
    a kind, so aspects, which outnumber the rest, leave room for ingresses, the Moon's sign and
    retrogrades."""
    shown, per_kind = [], Counter()
    for index, (fact, _) in enumerate(ranked):
        kind = str(fact.get("kind") or "")
        in_window = start is None or end is None or fact_in_window(fact, start, end)
        if per_kind[kind] < MAX_FACTS_PER_KIND and in_window:
            per_kind[kind] += 1
            shown.append(index)
            if len(shown) == MAX_FACTS:
                break
    return shown


def reader_window(local_date: date, time_zone: str, since: time = time(0)) -> tuple[datetime, datetime]:
    """The UTC interval from `since` on the reader's local date to the end of that date."""
    local = zone(time_zone)
    start = datetime.combine(local_date, since, tzinfo=local).astimezone(UTC)
    end = datetime.combine(local_date + timedelta(days=1), time(0), tzinfo=local).astimezone(UTC)
    return start, end


def fact_lines(facts, start: datetime | None = None, end: datetime | None = None) -> list[FactLine]:
    """The sky facts a reader sees for [start, end) (all of the forecast's window without them),
    highest rank first."""
    ranked = ranked_fact_lines(facts)
    return [ranked[index][1] for index in visible_lines(ranked, start, end)]


def local_time_label(instant: datetime, time_zone: str, local_date: date, in_parentheses: bool = False) -> str:
    """'14:32 (Europe/Paris)', with the day when it is not on `local_date`; inside parentheses
    already, '14:32 Europe/Paris time'."""
    local = instant.astimezone(zone(time_zone))
    clock = f"{local:%H:%M}" if local.date() == local_date else f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"
    return f"{clock} {time_zone} time" if in_parentheses else f"{clock} ({time_zone})"


def sky_lines(facts, local_date: date, time_zone: str, since: time = time(0)) -> list[str]:
    """ "In the sky" for a reader: what happens from `since` on their date to its end, most
    important first, each time written in `time_zone` (the pages and the API; the email builds
    the same lines once per forecast and picks them per reader)."""
    start, end = reader_window(local_date, time_zone, since)
    return [
        line.render(lambda instant, nested: local_time_label(instant, time_zone, local_date, nested))
        for line in fact_lines(facts, start, end)
    ]
