"""Public reading pages, the shared include, the Forecast admin and the commands around them."""

from datetime import date, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from forecasts.models import Forecast
from forecasts.writing.generation import forecasts_prepare
from forecasts.zodiac import SIGNS

OFFLINE = "forecasts.writing.generators.offline.OfflineComposer"
DAY = date(2025, 6, 20)


@pytest.fixture
def day_written(kb, settings):
    settings.FORECAST_GENERATOR = OFFLINE
    forecasts_prepare(DAY)
    return DAY


@pytest.mark.django_db
def test_the_day_page_shows_all_twelve_signs_and_says_when_one_is_being_prepared(day_written, client):
    Forecast.objects.filter(date=DAY, sign="leo").update(status=Forecast.Status.GENERATING)
    response = client.get(reverse("forecasts:today"), {"date": DAY.isoformat()})
    assert response.status_code == 200
    html = response.content.decode()
    for sign in SIGNS:
        assert sign.name in html
    assert html.count("being prepared") == 1
    assert Forecast.objects.get(date=DAY, sign="aries").headline in html
    assert "<svg" in html  # the sky wheel of that date


@pytest.mark.django_db
def test_today_without_forecasts_never_writes_one_in_the_request(kb, client):
    response = client.get(reverse("forecasts:today"))
    assert response.status_code == 200
    assert response.content.decode().count("being prepared") == 12
    assert not Forecast.objects.exists()


@pytest.mark.django_db
def test_bad_dates_and_signs_are_a_400_or_404_never_a_500(kb, client):
    assert client.get(reverse("forecasts:today"), {"date": "yesterday"}).status_code == 400
    assert client.get(reverse("forecasts:today"), {"date": "0001-01-01"}).status_code == 400
    assert client.get("/signs/ophiuchus/").status_code == 404
    assert client.get("/signs/leo/2025-13-40/").status_code == 404
    assert client.get("/signs/leo/0001-01-01/").status_code == 404
    assert client.get("/signs/leo/1950-01-01/").status_code == 200


@pytest.mark.django_db
def test_a_sign_page_has_its_reading_wheel_and_archive(day_written, client):
    today = timezone.now().date()
    Forecast.objects.filter(date=DAY, sign="virgo").update(date=today)
    with time_machine.travel(timezone.now(), tick=False):  # the page's "today" is the one written above
        response = client.get(reverse("forecasts:sign", args=["virgo"]))
    html = response.content.decode()
    assert response.status_code == 200
    today_forecast = Forecast.objects.get(date=today, sign="virgo")
    assert today_forecast.headline in html and "<svg" in html
    assert "In the sky to the end of your day" in html
    day_response = client.get(reverse("forecasts:sign_day", args=["leo", DAY.isoformat()]))
    leo = Forecast.objects.get(date=DAY, sign="leo")
    assert leo.headline in day_response.content.decode()
    archive = client.get(reverse("forecasts:sign", args=["leo"])).content.decode()
    assert reverse("forecasts:sign_day", args=["leo", DAY.isoformat()]) in archive


@pytest.mark.django_db
def test_the_include_shows_only_the_readers_topics(day_written):
    forecast = Forecast.objects.get(date=DAY, sign="leo")
    template = Template('{% include "forecasts/_forecast_body.html" with forecast=forecast topics=topics %}')
    html = template.render(Context({"forecast": forecast, "topics": ["love", "money"]}))
    assert "<h4>Love</h4>" in html and "<h4>Money</h4>" in html
    assert "<h4>Career</h4>" not in html and "<h4>Health</h4>" not in html
    everything = Template('{% include "forecasts/_forecast_body.html" with forecast=forecast show_facts=False %}')
    html = everything.render(Context({"forecast": forecast}))
    assert "<h4>Growth</h4>" in html and "The sky this reading" not in html


@pytest.mark.django_db
def test_the_landing_page_links_to_the_readings(client):
    html = client.get("/").content.decode()
    assert reverse("forecasts:today") in html
    assert reverse("forecasts:sign", args=["scorpio"]) in html


def _admin_form(forecast: Forecast, **changes) -> dict:
    data = {"headline": forecast.headline, "overview": forecast.overview}
    data.update({f"section_{topic}": text for topic, text in forecast.sections.items()})
    data.update(changes)
    return data


@pytest.mark.django_db
def test_an_admin_edit_is_checked_against_the_sky_and_records_the_editor(day_written, admin_client, admin_user):
    forecast = Forecast.objects.get(date=DAY, sign="leo")
    url = reverse("admin:forecasts_forecast_change", args=[forecast.pk])
    page = admin_client.get(url).content.decode()
    assert "sky facts" in page.lower() and forecast.facts[0]["summary"] in page

    refused = admin_client.post(url, _admin_form(forecast, overview="Mercury retrograde muddles everything."))
    assert refused.status_code == 200
    assert "Mercury is not retrograde" in refused.content.decode()
    assert Forecast.objects.get(pk=forecast.pk).edited_by is None

    fine = admin_client.post(url, _admin_form(forecast, headline="A calm, kind day for Leo"))
    assert fine.status_code == 302
    edited = Forecast.objects.get(pk=forecast.pk)
    assert edited.headline == "A calm, kind day for Leo" and edited.edited_by == admin_user and edited.grounded

    forced = admin_client.post(
        url, _admin_form(edited, overview="Mercury retrograde muddles everything.", override_grounding="on")
    )
    assert forced.status_code == 302
    assert Forecast.objects.get(pk=forecast.pk).grounded is False


@pytest.mark.django_db
def test_admin_actions_approve_and_regenerate(day_written, admin_client):
    changelist = reverse("admin:forecasts_forecast_changelist")
    leo = Forecast.objects.get(date=DAY, sign="leo")
    Forecast.objects.filter(pk=leo.pk).update(headline="Edited")
    ids = list(Forecast.objects.filter(date=DAY, sign__in=["leo", "aries"]).values_list("pk", flat=True))
    admin_client.post(changelist, {"action": "approve", "_selected_action": ids})
    assert Forecast.objects.filter(pk__in=ids, status=Forecast.Status.APPROVED).count() == 2
    admin_client.post(changelist, {"action": "regenerate", "_selected_action": [leo.pk]})
    again = Forecast.objects.get(pk=leo.pk)
    assert again.headline == leo.headline and again.status == Forecast.Status.DRAFT


@pytest.mark.django_db
def test_forecasts_prepare_command_writes_today_and_tomorrow_by_default(kb, settings):
    settings.FORECAST_GENERATOR = OFFLINE
    out = StringIO()
    with time_machine.travel(timezone.now(), tick=False):  # "today" is the command's, even at midnight
        call_command("forecasts_prepare", stdout=out)
        today = timezone.now().date()
    assert f"{today}: 12 written" in out.getvalue()
    assert f"{today + timedelta(days=1)}: 12 written" in out.getvalue()
    out = StringIO()
    call_command("forecasts_prepare", "--date", today.isoformat(), stdout=out)
    assert "0 written, 12 already done" in out.getvalue()
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("forecasts_prepare", "--date", "next tuesday")


@pytest.mark.django_db
def test_site_prepare_loads_the_knowledge_base_and_writes_two_days(settings):
    settings.FORECAST_GENERATOR = "forecasts.writing.generators.openai_responses.OpenAIGenerator"  # not used by it
    out = StringIO()
    with time_machine.travel(timezone.now(), tick=False):  # "today" is the command's, even at midnight
        call_command("site_prepare", stdout=out)
        today = timezone.now().date()
    assert Forecast.objects.filter(date__in=[today, today + timedelta(days=1)]).count() == 24
    assert set(Forecast.objects.values_list("generator", flat=True)) == {"offline"}
    assert "Knowledge base:" in out.getvalue()


@pytest.mark.django_db
def test_the_admin_lists_passages_and_forecasts(day_written, admin_client):
    passages = admin_client.get(reverse("admin:forecasts_passage_changelist"), {"kind": "aspect", "q": "Venus"})
    assert passages.status_code == 200 and "aspect-venus-trine-jupiter" in passages.content.decode()
    forecasts = admin_client.get(reverse("admin:forecasts_forecast_changelist"), {"generator": "offline"})
    assert forecasts.status_code == 200
    assert Forecast.objects.get(date=DAY, sign="leo").headline in forecasts.content.decode()
    assert admin_client.get(reverse("admin:forecasts_forecast_add")).status_code == 403
