"""The reading on the site: time slots in the visitor's zone, Do / Don't, In the sky, the glossary."""

from datetime import date

import pytest
from django.urls import reverse

from forecasts.tests.factories import ForecastFactory, sample_facts

DAY = date(2025, 3, 9)


@pytest.mark.django_db
def test_a_sign_day_page_writes_the_readings_times_in_the_visitors_zone(client):
    ForecastFactory(
        date=DAY,
        sign="leo",
        overview="The Moon enters Leo [[at:2025-03-09T14:32Z]], and the mood lifts.",
        advice={"do": "Say yes.", "dont": "Sulk."},
        facts=sample_facts(DAY),
    )
    url = reverse("forecasts:sign_day", kwargs={"sign": "leo", "day": DAY.isoformat()})

    paris = client.get(url, {"tz": "Europe/Paris"}).content.decode()
    assert "The Moon enters Leo at 15:32 this afternoon, and the mood lifts." in paris
    assert "<strong>Do:</strong> Say yes." in paris and "Sulk." in paris
    assert "[[at:" not in paris
    assert reverse("forecasts:glossary") in paris  # In the sky links the words it uses

    auckland = client.get(url, {"tz": "Pacific/Auckland"}).content.decode()
    assert "The Moon enters Leo at 03:32 in the small hours of tomorrow, and the mood lifts." in auckland


def test_the_glossary_explains_the_words_of_in_the_sky(client):
    page = client.get(reverse("forecasts:glossary")).content.decode()
    for word in ("Conjunction", "Sextile", "Square", "Trine", "Opposition", "Retrograde", "solar houses", "orb"):
        assert word in page
