"""`manage.py sky`: the sky of a moment, or events over a range, as a table or JSON."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from forecasts.sky import BODY_SLUGS, EVENT_TYPES

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def run(*args: str) -> str:
    out = StringIO()
    call_command("sky", *args, stdout=out)
    return out.getvalue()


def test_json_snapshot_lists_every_body_with_sign_degree_speed_and_direction():
    document = json.loads(run("--at", "2025-03-20T09:01:29Z", "--json"))
    assert document["at"] == "2025-03-20T09:01:29Z"
    assert list(document["bodies"]) == list(BODY_SLUGS)
    sun = document["bodies"]["sun"]
    assert set(sun) >= {"longitude", "sign", "degree", "speed", "retrograde"}
    assert sun["longitude"] < 0.001 or sun["longitude"] > 359.999
    assert document["bodies"]["mercury"]["retrograde"] is True
    assert document["moon_phase"]["name"] == "waning_gibbous"
    assert {"bodies", "aspect", "orb", "applying"} <= set(document["aspects"][0])


def test_table_snapshot_is_readable():
    table = run("--at", "2025-03-20T09:01:29")
    assert "Sky at 2025-03-20 09:01:29 UTC" in table
    assert "Mercury     Aries" in table and " R" in table
    assert "Moon phase: waning gibbous" in table


def test_svg_output_is_the_wheel():
    assert run("--at", "2025-03-20", "--svg").startswith("<svg ")


def test_json_events_for_a_year_use_the_documented_shape():
    events = json.loads(run("--events", "--start", "2025-03-01", "--end", "2025-03-31", "--json"))
    assert {"type", "body", "time", "sign", "longitude"} <= set(events[0])
    assert {event["type"] for event in events} <= set(EVENT_TYPES)
    equinox = [e for e in events if e["type"] == "ingress" and e["body"] == "sun"]
    assert [(e["sign"], e["time"][:16]) for e in equinox] == [("aries", "2025-03-20T09:01")]
    # A bare end date counts as a whole day.
    assert any(event["time"].startswith("2025-03-30") for event in events)


def test_events_can_be_filtered_by_body_and_type():
    events = json.loads(
        run(
            "--events",
            "--start",
            "2025-01-01",
            "--end",
            "2025-12-31",
            "--json",
            "--bodies",
            "mercury",
            "--types",
            "station_retrograde",
        )
    )
    assert [event["time"][:10] for event in events] == ["2025-03-15", "2025-07-18", "2025-11-09"]


def test_events_table_lists_times_in_utc():
    table = run("--events", "--start", "2025-03-14", "--end", "2025-03-14")
    assert "2025-03-14 06:59 lunar_eclipse" in table
    assert table.rstrip().endswith("events")


@pytest.mark.parametrize(
    "args",
    [
        ("--at", "yesterday-ish"),
        ("--events", "--start", "2025-13-01", "--end", "2025-12-31"),
        ("--events", "--start", "2025-12-31", "--end", "2025-01-01"),
        ("--events", "--start", "2020-01-01", "--end", "2026-01-01"),
        ("--events", "--start", "2025-01-01"),
        ("--events", "--start", "2025-01-01", "--end", "2025-02-01", "--bodies", "vulcan"),
        ("--at", "1850-01-01T00:00Z"),
    ],
)
def test_bad_arguments_raise_a_usage_error(args):
    with pytest.raises(CommandError) as raised:
        run(*args)
    assert raised.value.returncode == 2
    assert "\n" not in str(raised.value)


def test_bad_arguments_print_one_line_on_stderr_and_exit_2():
    result = subprocess.run(
        [sys.executable, "manage.py", "sky", "--events", "--start", "2025-02-01", "--end", "2025-01-01"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "--end must be after --start" in result.stderr
