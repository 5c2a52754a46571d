"""Transits per sun sign: houses, the facts a forecast may state, and how they are ranked."""

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasts.sky import BODY_SLUGS, NODE, events_between
from forecasts.sky.ephemeris import positions_at
from forecasts.writing.facts import FACT_KEYS
from forecasts.writing.transit_facts import (
    ANGULAR_BOOST,
    ANGULAR_HOUSES,
    FACT_KINDS,
    HOUSE_TOPICS,
    RANK_BASE,
    RULER_BOOST,
    _at,
    _summary_fields,
    house_for,
)
from forecasts.writing.transits import transits_for_all_signs, transits_for_sign
from forecasts.zodiac import SIGN_SLUGS, SIGNS_BY_SLUG

# 2025-03-14: a total lunar eclipse at 06:58 UTC in Virgo, and the Moon enters Libra at 18:58 UTC.
ECLIPSE_DAY = (datetime(2025, 3, 14, 4, 0, tzinfo=UTC), datetime(2025, 3, 15, 4, 0, tzinfo=UTC))
# 2025-03-15: Mercury stations retrograde at 06:46 UTC in Aries.
STATION_DAY = (datetime(2025, 3, 15, tzinfo=UTC), datetime(2025, 3, 16, tzinfo=UTC))
# Kinds in the order the brief ranks them; each tier must outrank every later one.
TIERS = [{"eclipse", "station"}, {"lunation"}, {"ingress"}, {"aspect"}, {"moon_ingress", "moon_sign"}]
# Every instant of 2025 falls in one of these (the longest windows transits_for_sign takes).
WEEKS_OF_2025 = [
    (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(weeks=n), datetime(2025, 1, 1, tzinfo=UTC) + timedelta(weeks=n + 1))
    for n in range(53)
]
EVENT_KINDS = {"ingress", "moon_ingress", "station", "lunation", "eclipse", "moon_phase"}


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc_clock(when: datetime) -> str:
    """How a summary writes an instant."""
    return f"{when:%H:%M} UTC on {when.day} {when:%b}"


def local_day(day: str, zone: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone))
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


@pytest.mark.parametrize(
    ("body_sign", "sun_sign", "house"),
    [("aries", "aries", 1), ("taurus", "aries", 2), ("aries", "leo", 9), ("pisces", "aries", 12), ("leo", "pisces", 6)],
)
def test_houses_are_solar_whole_sign_houses(body_sign, sun_sign, house):
    assert house_for(body_sign, sun_sign) == house


def test_every_house_has_its_topics():
    assert sorted(HOUSE_TOPICS) == list(range(1, 13))
    assert HOUSE_TOPICS[4] == ("home", "family")
    assert "the hidden" in HOUSE_TOPICS[12]


@pytest.mark.parametrize("sign", SIGN_SLUGS)
def test_facts_share_one_schema_and_are_plain_json(sign):
    transits = transits_for_sign(sign, *ECLIPSE_DAY)
    start, end = ECLIPSE_DAY
    assert transits.facts
    for fact in transits.facts:
        assert tuple(fact) == FACT_KEYS
        assert fact["kind"] in FACT_KINDS
        assert isinstance(fact["rank"], int)
        assert fact["summary"].endswith(".") and len(fact["summary"]) < 200
        assert all(body in BODY_SLUGS for body in fact["bodies"])
        for key in ("time", "valid_from", "valid_until"):
            if fact[key] is not None:
                assert start <= parse_utc(fact[key]) <= end
        if fact["house"] is not None:
            assert fact["house"] == house_for(fact["sign"], sign)
            assert fact["topics"] == list(HOUSE_TOPICS[fact["house"]])
    assert json.loads(json.dumps(transits.to_dict()))["facts"] == transits.facts
    assert [fact["rank"] for fact in transits.facts] == sorted((fact["rank"] for fact in transits.facts), reverse=True)


def test_every_body_and_the_node_has_its_sign_house_and_direction_at_the_start():
    transits = transits_for_sign("leo", *ECLIPSE_DAY)
    start = ECLIPSE_DAY[0]
    positions = positions_at(start)
    states = {
        fact["bodies"][0]: fact
        for fact in transits.facts
        if fact["kind"] in ("body_in_sign", "moon_sign") and parse_utc(fact["valid_from"]) == start
    }
    assert set(states) == set(BODY_SLUGS)
    for body, fact in states.items():
        assert fact["sign"] == positions[body].sign
        assert fact["house"] == house_for(positions[body].sign, "leo")
        assert fact["retrograde"] == positions[body].retrograde
    assert states["venus"]["retrograde"] is True
    assert states[NODE]["retrograde"] is True
    assert [body.body for body in transits.bodies] == list(BODY_SLUGS)


def test_states_cover_the_whole_window_without_gaps():
    transits = transits_for_sign("virgo", *ECLIPSE_DAY)
    for body in BODY_SLUGS:
        spans = sorted(
            (parse_utc(fact["valid_from"]), parse_utc(fact["valid_until"]))
            for fact in transits.facts
            if fact["kind"] in ("body_in_sign", "moon_sign") and fact["bodies"] == [body]
        )
        assert spans[0][0] == ECLIPSE_DAY[0] and spans[-1][1] == ECLIPSE_DAY[1]
        assert all(a[1] == b[0] for a, b in pairwise(spans))


def test_the_moons_sign_change_inside_the_window_is_exposed_with_its_exact_time():
    transits = transits_for_sign("virgo", *ECLIPSE_DAY)
    assert transits.moon_sign_at_start == "virgo"
    assert transits.moon_house_at_start == 1
    [ingress] = transits.moon_ingresses
    assert (ingress.sign, ingress.from_sign, ingress.house) == ("libra", "virgo", 2)
    assert positions_at(ingress.time - timedelta(minutes=1))["moon"].sign == "virgo"
    assert positions_at(ingress.time + timedelta(minutes=1))["moon"].sign == "libra"
    assert transits.moon_sign_at_end == "libra"
    [fact] = [fact for fact in transits.facts if fact["kind"] == "moon_ingress"]
    assert abs(parse_utc(fact["time"]) - ingress.time) < timedelta(seconds=1)
    first_moon_sign = next(f for f in transits.facts if f["kind"] == "moon_sign" and f["sign"] == "virgo")
    assert first_moon_sign["valid_until"] == fact["time"]


def test_the_readers_local_day_decides_which_moon_sign_is_true():
    tokyo = transits_for_sign("aries", *local_day("2025-03-14", "Asia/Tokyo"))
    los_angeles = transits_for_sign("aries", *local_day("2025-03-14", "America/Los_Angeles"))
    assert tokyo.moon_ingresses == []
    assert (tokyo.moon_sign_at_start, tokyo.moon_sign_at_end) == ("virgo", "virgo")
    assert (los_angeles.moon_sign_at_start, los_angeles.moon_sign_at_end) == ("virgo", "libra")
    ingress_local = los_angeles.moon_ingresses[0].time.astimezone(ZoneInfo("America/Los_Angeles"))
    assert (ingress_local.hour, ingress_local.minute) == (11, 58)


def test_an_eclipse_tops_the_day_for_every_sign_and_the_lunation_follows():
    for sign, transits in transits_for_all_signs(*ECLIPSE_DAY).items():
        kinds = [fact["kind"] for fact in transits.facts]
        assert kinds[:2] == ["eclipse", "lunation"], sign
        eclipse = transits.facts[0]
        assert (eclipse["eclipse"], eclipse["eclipse_type"], eclipse["sign"]) == ("lunar", "total", "virgo")
        assert abs(parse_utc(eclipse["time"]) - datetime(2025, 3, 14, 6, 59, tzinfo=UTC)) < timedelta(minutes=2)


def test_a_station_is_boosted_for_the_signs_it_rules_and_in_angular_houses():
    def station_rank(sign: str) -> int:
        [fact] = [f for f in transits_for_sign(sign, *STATION_DAY).facts if f["kind"] == "station"]
        assert fact["bodies"] == ["mercury"] and fact["direction"] == "retrograde"
        return fact["rank"]

    assert station_rank("taurus") == RANK_BASE["station"]  # 12th house, not ruled by Mercury
    assert station_rank("gemini") == RANK_BASE["station"] + RULER_BOOST  # Mercury rules Gemini; 11th house
    assert station_rank("aries") == RANK_BASE["station"] + ANGULAR_BOOST  # Aries is the reader's 1st house
    assert station_rank("libra") == RANK_BASE["station"] + ANGULAR_BOOST  # and Libra's 7th
    assert house_for("aries", "libra") in ANGULAR_HOUSES


def test_aspects_in_orb_carry_both_places_orbs_and_exact_times():
    transits = transits_for_sign("libra", *ECLIPSE_DAY)
    aspects = {(f["bodies"][0], f["bodies"][1], f["aspect"]): f for f in transits.facts if f["kind"] == "aspect"}
    sextile = aspects[("sun", "uranus", "sextile")]
    assert len(sextile["signs"]) == len(sextile["houses"]) == 2
    assert sextile["sign"] is None and sextile["house"] is None
    exact = parse_utc(sextile["time"])
    assert ECLIPSE_DAY[0] <= exact < ECLIPSE_DAY[1]
    assert sextile["exact_times"] == [sextile["time"]]
    for fact in aspects.values():
        assert min(fact["orb_at_start"], fact["orb_at_end"]) <= fact["orb_limit"] or fact["time"]
        assert isinstance(fact["applying"], bool)


def test_retrograde_planets_are_stated_for_the_part_of_the_window_they_are_retrograde():
    transits = transits_for_sign("cancer", *STATION_DAY)
    retrograde = {fact["bodies"][0]: fact for fact in transits.facts if fact["kind"] == "retrograde"}
    [station] = [fact for fact in transits.facts if fact["kind"] == "station"]
    assert retrograde["mercury"]["valid_from"] == station["time"]
    assert abs(parse_utc(station["time"]) - datetime(2025, 3, 15, 6, 46, tzinfo=UTC)) < timedelta(minutes=2)
    assert parse_utc(retrograde["venus"]["valid_from"]) == STATION_DAY[0]
    assert NODE not in retrograde


@settings(max_examples=8, deadline=None, database=None)
@given(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(SIGN_SLUGS),
)
def test_ranking_keeps_the_order_of_kinds(start, sign):
    transits = transits_for_sign(sign, start, start + timedelta(days=1))
    ranks = {}
    for fact in transits.facts:
        tier = next((i for i, kinds in enumerate(TIERS) if fact["kind"] in kinds), len(TIERS))
        ranks.setdefault(tier, []).append(fact["rank"])
    tiers = sorted(ranks)
    for higher, lower in pairwise(tiers):
        assert min(ranks[higher]) > max(ranks[lower])


@settings(max_examples=6, deadline=None, database=None)
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)))
def test_every_event_in_the_window_becomes_a_fact(start):
    end = start + timedelta(hours=30)
    events = events_between(start, end)
    facts = transits_for_sign("scorpio", start, end).facts
    timed = {(fact["kind"], fact["time"]) for fact in facts if fact["time"]}
    kinds = {"ingress": "ingress", "station_retrograde": "station", "station_direct": "station"}
    for event in events:
        kind = kinds.get(event.type, "eclipse" if event.type.endswith("eclipse") else "lunation")
        if event.type == "ingress" and event.body == "moon":
            kind = "moon_ingress"
        assert (kind, event.to_dict()["time"]) in timed, event


def test_windows_are_checked():
    start, end = ECLIPSE_DAY
    with pytest.raises(ValueError, match="unknown sign"):
        transits_for_sign("ophiuchus", start, end)
    with pytest.raises(ValueError, match="end after"):
        transits_for_sign("aries", end, start)
    with pytest.raises(ValueError, match="7 days"):
        transits_for_sign("aries", start, start + timedelta(days=8))
    with pytest.raises(ValueError, match="time zone"):
        transits_for_sign("aries", start.replace(tzinfo=None), end)


def test_the_rulers_come_from_the_zodiac_table():
    assert SIGNS_BY_SLUG["gemini"].ruler == "mercury"
    assert SIGNS_BY_SLUG["cancer"].ruler == "moon"


def test_a_summary_is_its_template_with_its_instants_written_in_utc():
    [ingress] = [f for f in transits_for_sign("virgo", *ECLIPSE_DAY).facts if f["kind"] == "moon_ingress"]
    assert ingress["summary_template"] == "The Moon enters Libra, your 2nd house (money and values), at {0}."
    assert ingress["instants"] == [ingress["time"]] == ["2025-03-14T18:58:51Z"]
    assert ingress["summary"] == "The Moon enters Libra, your 2nd house (money and values), at 18:58 UTC on 14 Mar."


def test_every_time_a_summary_names_is_one_of_the_facts_own_instants_all_year():
    for start, end in WEEKS_OF_2025:
        for sign, transits in transits_for_all_signs(start, end).items():
            for fact in transits.facts:
                template, instants = fact["summary_template"], fact["instants"]
                assert fact["summary"] == template.format(*(utc_clock(parse_utc(t)) for t in instants)), sign
                assert "UTC" not in template and fact["summary"].count(" UTC on ") == len(instants)
                if fact["kind"] in EVENT_KINDS:
                    assert instants == [fact["time"]]
                elif fact["exact_times"]:
                    assert instants == fact["exact_times"]
                elif fact["kind"] == "aspect":  # in orb now, or "coming into orb by" the window's end
                    assert instants in ([], [f"{end:%Y-%m-%dT%H:%M:%SZ}"])
                else:
                    assert set(instants) <= {fact["valid_from"], fact["valid_until"]}


def test_a_summary_names_an_instant_to_the_minute_its_time_rounds_to():
    # The Sun enters Libra at 06:49:59.6 UTC: the summary says 06:50, as `time` does.
    start = datetime(2023, 9, 23, tzinfo=UTC)
    facts = transits_for_sign("libra", start, start + timedelta(days=1)).facts
    [ingress] = [f for f in facts if f["kind"] == "ingress" and f["bodies"] == ["sun"]]
    assert ingress["instants"] == [ingress["time"]] == ["2023-09-23T06:50:00Z"]
    assert ingress["summary"].endswith("at 06:50 UTC on 23 Sep.")


def test_braces_in_a_summarys_words_are_kept_out_of_its_template_slots():
    when = datetime(2025, 3, 9, 14, 32, 10, tzinfo=UTC)
    fields = _summary_fields("Venus {in braces} at " + _at(when) + ", until " + _at(when + timedelta(days=1)) + ".")
    assert fields == {
        "summary": "Venus {in braces} at 14:32 UTC on 9 Mar, until 14:32 UTC on 10 Mar.",
        "summary_template": "Venus {{in braces}} at {0}, until {1}.",
        "instants": ["2025-03-09T14:32:10Z", "2025-03-10T14:32:10Z"],
    }
