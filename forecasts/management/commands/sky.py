"""Print the real sky of a moment, or the sky events of a date range.

manage.py sky --at 2025-03-20T09:01:29Z [--json | --svg]
manage.py sky --events --start 2025-01-01 --end 2025-12-31 [--json] [--bodies moon,sun] [--types ingress]
"""

import json
from datetime import UTC, date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError

from forecasts.sky import (
    BODIES_BY_SLUG,
    BODY_SLUGS,
    EVENT_TYPES,
    SUPPORTED_END,
    SUPPORTED_START,
    SkyEvent,
    SkySnapshot,
    events_between,
    sky_at,
    sky_wheel_svg,
)
from forecasts.zodiac import SIGNS_BY_SLUG

MAX_EVENT_RANGE = timedelta(days=5 * 366)
USAGE_ERROR = 2


def _usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE_ERROR)


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time; no offset means UTC. A bare date means its midnight
    (or, with end_of_day, the midnight after it, so an end date counts as a whole day)."""
    cleaned = text.strip()
    try:
        if len(cleaned) == 10:
            day = date.fromisoformat(cleaned)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(cleaned.replace("z", "Z"))
    except ValueError:
        raise _usage_error(f"cannot read {text!r} as a date or date-time (use e.g. 2025-03-20T09:01Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check_supported(*moments: datetime) -> None:
    for moment in moments:
        if not SUPPORTED_START <= moment <= SUPPORTED_END:
            raise _usage_error(f"{moment:%Y-%m-%d} is outside the ephemeris range 1900-01-01..2053-01-01")


def _csv_choice(text: str | None, allowed: tuple[str, ...], what: str) -> list[str] | None:
    if text is None:
        return None
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        raise _usage_error(f"unknown {what}: {', '.join(unknown) or text!r} (choose from {', '.join(allowed)})")
    return chosen


def _dms(degrees_in_sign: float) -> str:
    seconds_total = min(round(degrees_in_sign * 3600.0), 30 * 3600 - 1)
    minutes_total, seconds = divmod(seconds_total, 60)
    degrees, minutes = divmod(minutes_total, 60)
    return f"{degrees:2d}\u00b0{minutes:02d}\u2032{seconds:02d}\u2033"


class Command(BaseCommand):
    help = "Show where the Sun, Moon, planets and node are (apparent ecliptic of date), or list sky events."
    requires_system_checks: list[str] = []  # pure computation: no database, no checks needed

    def add_arguments(self, parser):
        parser.add_argument("--at", help="ISO 8601 instant (default: now); no offset means UTC")
        parser.add_argument("--events", action="store_true", help="list events between --start and --end instead")
        parser.add_argument("--start", help="first date (or date-time) of the event range")
        parser.add_argument("--end", help="last date of the event range (a bare date is included whole)")
        parser.add_argument("--bodies", help="comma-separated bodies for --events (default: all)")
        parser.add_argument("--types", help="comma-separated event types for --events (default: all)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument("--svg", action="store_true", help="print the sky wheel as SVG")

    def handle(self, *args, **options):
        if options["events"]:
            self._events(options)
        else:
            self._snapshot(options)

    def _snapshot(self, options) -> None:
        if options["start"] or options["end"]:
            raise _usage_error("--start and --end go with --events")
        moment = parse_moment(options["at"]) if options["at"] else datetime.now(UTC)
        _check_supported(moment)
        snapshot = sky_at(moment)
        if options["svg"]:
            self.stdout.write(sky_wheel_svg(snapshot))
        elif options["json"]:
            self.stdout.write(json.dumps(snapshot.to_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(self._snapshot_table(snapshot))

    def _events(self, options) -> None:
        if not options["start"] or not options["end"]:
            raise _usage_error("--events needs --start and --end")
        if options["at"] or options["svg"]:
            raise _usage_error("--at and --svg do not go with --events")
        start = parse_moment(options["start"])
        end = parse_moment(options["end"], end_of_day=True)
        if end <= start:
            raise _usage_error("--end must be after --start")
        if end - start > MAX_EVENT_RANGE:
            raise _usage_error("the range may be at most 5 years; split it into shorter ones")
        _check_supported(start, end)
        bodies = _csv_choice(options["bodies"], BODY_SLUGS, "bodies")
        types = _csv_choice(options["types"], EVENT_TYPES, "event types")
        events = events_between(start, end, bodies=bodies, types=types)
        if options["json"]:
            self.stdout.write(json.dumps([event.to_dict() for event in events], ensure_ascii=False, indent=2))
        else:
            self.stdout.write(self._events_table(events))

    @staticmethod
    def _snapshot_table(snapshot: SkySnapshot) -> str:
        lines = [f"Sky at {snapshot.at:%Y-%m-%d %H:%M:%S} UTC (geocentric, apparent ecliptic of date)", ""]
        lines.append(f"{'Body':<11} {'Sign':<12} {'Position':>12}  {'Speed/day':>10}")
        for slug, position in snapshot.bodies.items():
            marker = " R" if position.retrograde else ""
            lines.append(
                f"{BODIES_BY_SLUG[slug].name:<11} {SIGNS_BY_SLUG[position.sign].name:<12} "
                f"{_dms(position.degree):>12}  {position.speed:>+10.4f}{marker}"
            )
        phase = snapshot.moon_phase
        lines += [
            "",
            f"Moon phase: {phase.label}, {phase.illumination:.0%} lit (elongation {phase.elongation:.1f}\u00b0)",
        ]
        lines += ["", "Aspects:" if snapshot.aspects else "Aspects: none in orb"]
        for aspect in snapshot.aspects:
            names = f"{BODIES_BY_SLUG[aspect.body_a].name} {aspect.aspect} {BODIES_BY_SLUG[aspect.body_b].name}"
            lines.append(
                f"  {names:<36} orb {aspect.orb:4.1f}\u00b0  {'applying' if aspect.applying else 'separating'}"
            )
        return "\n".join(lines)

    @staticmethod
    def _events_table(events: list[SkyEvent]) -> str:
        lines = [f"{'Time (UTC)':<17} {'Event':<19} {'Body':<11} {'Sign':<12} Detail"]
        for event in events:
            detail = event.detail or (f"from {SIGNS_BY_SLUG[event.from_sign].name}" if event.from_sign else "")
            to_the_minute = event.time + timedelta(seconds=30)
            lines.append(
                f"{to_the_minute:%Y-%m-%d %H:%M} {event.type:<19} {BODIES_BY_SLUG[event.body].name:<11} "
                f"{SIGNS_BY_SLUG[event.sign].name:<12} {detail}"
            )
        lines.append(f"{len(events)} events")
        return "\n".join(lines)
