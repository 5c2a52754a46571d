"""Sky facts in the email: picked by rank, and every instant shown in the reader's own zone."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasts.sending.emails.facts import fact_lines, local_time_label
from forecasts.tests.factories import sample_facts

DAY = date(2025, 12, 31)
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
INGRESS = "The Moon enters Leo, your 5th house (romance), at 14:32 UTC on 31 Dec."


def shown(facts, time_zone: str = "Asia/Tokyo") -> list[str]:
    return [
        line.render(lambda instant, nested: local_time_label(instant, time_zone, DAY, nested))
        for line in fact_lines(facts)
    ]


def test_highest_rank_first_and_no_kind_crowds_out_the_others():
    facts = [{"kind": "aspect", "rank": 300 + n, "summary": f"Aspect {n}."} for n in range(10)]
    facts += [{"kind": "moon_sign", "rank": 200, "summary": "The Moon is in Leo."}]
    facts += [{"kind": "retrograde", "rank": 120, "summary": "Venus is retrograde."}]
    assert shown(facts) == [
        "Aspect 9.",
        "Aspect 8.",
        "Aspect 7.",
        "Aspect 6.",
        "The Moon is in Leo.",
        "Venus is retrograde.",
    ]


def test_a_fact_with_a_time_but_no_clock_in_its_summary_gets_one():
    facts = [{"kind": "lunation", "rank": 1, "time": "2025-12-31T12:00:00Z", "summary": "Full Moon in Cancer."}]
    assert shown(facts, "Europe/Paris") == ["Full Moon in Cancer at 13:00 (Europe/Paris)."]


def test_malformed_facts_are_skipped_or_composed_not_fatal():
    facts = ["not a dict", {"rank": "high"}, {"kind": "aspect", "bodies": ["sun", "moon"], "aspect": "square"}]
    assert shown(facts) == ["Sun square Moon."]
    assert fact_lines(None) == []


def test_local_time_label_names_the_day_only_when_it_differs():
    instant = datetime(2025, 12, 31, 14, 32, tzinfo=UTC)
    assert local_time_label(instant, "Europe/Paris", DAY) == "15:32 (Europe/Paris)"
    assert local_time_label(instant, "Pacific/Kiritimati", DAY) == "Thu 1 Jan, 04:32 (Pacific/Kiritimati)"
    assert local_time_label(instant, "UTC", DAY, in_parentheses=True) == "14:32 UTC time"


def test_instants_are_shown_in_the_readers_zone_from_the_template():
    assert shown(sample_facts(DAY), "Pacific/Kiritimati") == [
        "The Moon enters Leo, your 5th house (romance), at Thu 1 Jan, 04:32 (Pacific/Kiritimati).",
        "Venus trine Mars (exact at 17:10 Pacific/Kiritimati time), linking your 1st and 5th houses.",
        "Mercury is in Pisces, your 12th house (rest).",
    ]


def test_an_instant_keeps_its_year_whatever_date_it_is_read_against():
    new_year = {
        "kind": "aspect",
        "rank": 1,
        "time": "2026-01-01T04:30:00Z",
        "summary": "Mars trine Jupiter (exact at 04:30 UTC on 1 Jan), in your 5th house.",
        "summary_template": "Mars trine Jupiter (exact at {0}), in your 5th house.",
        "instants": ["2026-01-01T04:30:00Z"],
    }
    assert shown([new_year]) == ["Mars trine Jupiter (exact at Thu 1 Jan, 13:30 Asia/Tokyo time), in your 5th house."]
    [samoa] = shown([new_year], "Pacific/Pago_Pago")
    assert samoa == "Mars trine Jupiter (exact at 17:30 Pacific/Pago_Pago time), in your 5th house."
    [line] = fact_lines([new_year])
    assert line.times == [datetime(2026, 1, 1, 4, 30, tzinfo=UTC)]


def test_a_summary_without_its_template_is_shown_as_written():
    # No times are read out of the words: every stored fact with a summary has its template.
    [line] = fact_lines([{"kind": "aspect", "summary": INGRESS}])
    assert line.times == [] and line.render(str) == INGRESS


def test_literal_braces_in_a_template_are_text():
    fact = {"summary": "Venus {x} at 14:32 UTC on 31 Dec.", "summary_template": "Venus {{x}} at {0}."}
    fact["instants"] = ["2025-12-31T14:32:00Z"]
    assert shown([fact], "Europe/Paris") == ["Venus {x} at 15:32 (Europe/Paris)."]


def test_a_time_no_reader_could_see_is_left_out_not_fatal():
    facts = [{"kind": "lunation", "rank": 1, "time": "0001-01-01T00:00:00Z", "summary": "Full Moon in Cancer."}]
    assert shown(facts, "America/New_York") == ["Full Moon in Cancer."]


ONE = ["2025-12-31T14:32:00Z"]


@pytest.mark.parametrize(
    ("template", "instants"),
    [
        ("The Moon enters Leo, at {0}.", ["not a time"]),
        ("The Moon enters Leo, at {0}.", ["0001-01-01T00:00:00Z"]),  # no local time west of UTC
        ("The Moon enters Leo, at {0}.", ["9999-12-31T23:59:00Z"]),
        ("The Moon enters Leo, at {0}.", [20251231]),
        ("The Moon enters Leo, at {0}.", ONE[0]),
        ("The Moon enters Leo, at {0}.", None),
        ("The Moon enters Leo, at {0}.", []),
        ("The Moon enters Leo, at {0}.", ONE * 2),
        ("The Moon enters Leo, at {0} and {1}.", ONE),
        ("The Moon enters Leo, at {0} and {0}.", ONE * 2),
        ("The Moon enters Leo, at {1}.", ONE),
        ("The Moon enters Leo, at {}.", ONE),
        ("The Moon enters Leo, at {when}.", ONE),
        ("The Moon enters Leo, at {0.year}.", ONE),
        ("The Moon enters Leo, at {0[0]}.", ONE),
        ("The Moon enters Leo, at {0!r}.", ONE),
        ("The Moon enters Leo, at {0:%H:%M}.", ONE),
        ("The Moon enters Leo, at {99999999999999999999}.", ONE),
        ("The Moon enters {Leo, at {0}.", ONE),
        ("The Moon enters Leo}, at {0}.", ONE),
        ("The Moon enters Leo, at {0.", ONE),
        ("", []),
        (None, ONE),
        (["The Moon enters Leo, at {0}."], ONE),
    ],
)
def test_a_template_and_instants_that_do_not_fit_fall_back_to_the_summary(template, instants):
    fact = {"kind": "moon_ingress", "rank": 1, "time": ONE[0], "summary": INGRESS}
    fact.update(summary_template=template, instants=instants)
    for time_zone in ZONES:
        assert shown([fact], time_zone) == [INGRESS]


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(st.none(), st.text(alphabet="{}0123:!.[]ab x")),
    st.one_of(
        st.none(),
        st.text(),
        st.lists(st.one_of(st.text(), st.integers(), st.none(), st.datetimes().map(datetime.isoformat)), max_size=3),
    ),
)
def test_no_stored_template_or_instants_can_break_a_line(template, instants):
    fact = {"kind": "aspect", "rank": 1, "summary": INGRESS, "summary_template": template, "instants": instants}
    for time_zone in ("Pacific/Kiritimati", "America/New_York"):
        [line] = shown([fact], time_zone)
        assert line
