"""`manage.py reading_report`: the reading's figures from the command line, one-line errors."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[3]


def test_it_prints_the_figures_and_their_aims():
    out = StringIO()
    call_command("reading_report", "--start", "2026-12-01", "--days", "2", stdout=out)
    text = out.getvalue()
    assert "2 days x 12 signs from 2026-12-01: 24 readings" in text
    assert "repeated_within_sign" in text and "(aim 0.05)" in text
    assert "false_claims" in text


def test_json_output_has_every_figure():
    out = StringIO()
    call_command("reading_report", "--start", "2026-12-01", "--days", "1", "--json", stdout=out)
    figures = json.loads(out.getvalue())
    assert figures["readings"] == 12 and figures["false_claims"] == 0
    assert {"repeated_across_signs_of_a_day", "min_distinct_headlines", "main_words_mean"} <= set(figures)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--start", "2026-13-01"], "cannot read --start '2026-13-01' as a date"),
        (["--start", "2026-12-01", "--days", "0"], "--days must be between 1 and 366"),
        (["--start", "1899-12-01"], "ephemeris range"),
        (["--days", "3"], "the following arguments are required: --start"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "reading_report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_ENV": "test"},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
