"""Data migrations: what they do to rows stored before them."""

import importlib
from datetime import date

import pytest
from django.apps import apps

from forecasts.models import Forecast
from forecasts.sending.emails.facts import fact_lines, local_time_label
from forecasts.tests.factories import ForecastFactory, facts_stored_before_instants, sample_facts

facts_0006 = importlib.import_module("forecasts.migrations.0006_facts_summary_templates")

DAY = date(2025, 12, 31)
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago"]


def shown(facts, day: date, time_zone: str) -> list[str]:
    return [
        line.render(lambda instant, nested: local_time_label(instant, time_zone, day, nested))
        for line in fact_lines(facts)
    ]


def migrated(facts, day: date = DAY) -> list:
    return [facts_0006.fact_with_instants(fact, day) for fact in facts]


@pytest.mark.parametrize("time_zone", ZONES)
def test_0006_facts_stored_before_instants_read_the_same_as_facts_with_them(time_zone):
    assert shown(migrated(facts_stored_before_instants(DAY)), DAY, time_zone) == shown(
        sample_facts(DAY), DAY, time_zone
    )


def test_0006_utc_times_in_summaries_become_local_times_even_across_the_new_year():
    facts = [
        {"kind": "moon_ingress", "rank": 2, "summary": "The Moon enters Aries, at 23:10 UTC on 31 Dec."},
        {
            "kind": "aspect",
            "rank": 1,
            "summary": "Mars trine Jupiter (exact at 16:05 UTC on 1 Jan), in your {5th} house.",
        },
    ]
    assert shown(migrated(facts), DAY, "Asia/Tokyo") == [
        "The Moon enters Aries, at Thu 1 Jan, 08:10 (Asia/Tokyo).",
        "Mars trine Jupiter (exact at Fri 2 Jan, 01:05 Asia/Tokyo time), in your {5th} house.",
    ]
    assert shown(migrated(facts), DAY, "Pacific/Pago_Pago")[0] == "The Moon enters Aries, at 12:10 (Pacific/Pago_Pago)."


def test_0006_takes_the_year_nearest_the_forecasts_date():
    fact = {"summary": "Mars trine Jupiter (exact at 04:30 UTC on 1 Jan), in your 5th house."}
    assert facts_0006.fact_with_instants(fact, date(2025, 6, 30))["instants"] == ["2025-01-01T04:30:00+00:00"]
    assert facts_0006.fact_with_instants(fact, date(2025, 12, 31))["instants"] == ["2026-01-01T04:30:00+00:00"]


def test_0006_leaves_facts_with_templates_without_summaries_and_not_facts_alone():
    facts = [*sample_facts(DAY), {"kind": "aspect", "bodies": ["sun", "moon"]}, "not a dict"]
    assert migrated(facts) == facts


@pytest.mark.django_db
def test_0006_rewrites_only_rows_with_older_facts():
    old = ForecastFactory(date=DAY, sign="leo", facts=facts_stored_before_instants(DAY))
    current = ForecastFactory(date=DAY, sign="aries", facts=sample_facts(DAY))
    facts_0006.add_summary_templates(apps, None)
    old.refresh_from_db()
    assert all("summary_template" in fact and "instants" in fact for fact in old.facts)
    assert Forecast.objects.get(pk=current.pk).facts == sample_facts(DAY)
    assert shown(old.facts, DAY, "Europe/Paris") == shown(sample_facts(DAY), DAY, "Europe/Paris")
