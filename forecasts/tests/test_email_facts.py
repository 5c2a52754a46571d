"""Sky facts in the email: picked by rank, and every instant shown in the reader's own zone."""

from datetime import UTC, date, datetime

from forecasts.emails import fact_lines, local_time_label

DAY = date(2025, 12, 31)


def shown(facts, time_zone: str = "Asia/Tokyo") -> list[str]:
    return [
        line.render(lambda instant, nested: local_time_label(instant, time_zone, DAY, nested))
        for line in fact_lines(facts, DAY)
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


def test_utc_times_in_summaries_become_local_times_even_across_the_new_year():
    facts = [
        {"kind": "moon_ingress", "rank": 2, "summary": "The Moon enters Aries, at 23:10 UTC on 31 Dec."},
        {
            "kind": "aspect",
            "rank": 1,
            "summary": "Mars trine Jupiter (exact at 16:05 UTC on 1 Jan), in your 5th house.",
        },
    ]
    assert shown(facts) == [
        "The Moon enters Aries, at Thu 1 Jan, 08:10 (Asia/Tokyo).",
        "Mars trine Jupiter (exact at Fri 2 Jan, 01:05 Asia/Tokyo time), in your 5th house.",
    ]
    assert shown(facts, "Pacific/Pago_Pago")[0] == "The Moon enters Aries, at 12:10 (Pacific/Pago_Pago)."


def test_a_fact_with_a_time_but_no_clock_in_its_summary_gets_one():
    facts = [{"kind": "lunation", "rank": 1, "time": "2025-12-31T12:00:00Z", "summary": "Full Moon in Cancer."}]
    assert shown(facts, "Europe/Paris") == ["Full Moon in Cancer at 13:00 (Europe/Paris)."]


def test_malformed_facts_are_skipped_or_composed_not_fatal():
    facts = ["not a dict", {"rank": "high"}, {"kind": "aspect", "bodies": ["sun", "moon"], "aspect": "square"}]
    assert shown(facts) == ["Sun square Moon."]
    assert fact_lines(None, DAY) == []


def test_local_time_label_names_the_day_only_when_it_differs():
    instant = datetime(2025, 12, 31, 14, 32, tzinfo=UTC)
    assert local_time_label(instant, "Europe/Paris", DAY) == "15:32 (Europe/Paris)"
    assert local_time_label(instant, "Pacific/Kiritimati", DAY) == "Thu 1 Jan, 04:32 (Pacific/Kiritimati)"
    assert local_time_label(instant, "UTC", DAY, in_parentheses=True) == "14:32 UTC time"
