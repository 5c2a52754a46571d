"""Public reading pages, the shared include, the Forecast admin and the commands around them."""

from datetime import UTC, date, datetime, time
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.template import Context, Template
from django.urls import reverse

from forecasts.models import Forecast
from forecasts.tests.factories import sample_facts
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
def test_the_day_page_shows_all_twelve_signs_and_says_plainly_when_a_past_one_was_never_written(day_written, client):
    Forecast.objects.filter(date=DAY, sign="leo").update(status=Forecast.Status.FAILED)
    response = client.get(reverse("forecasts:today"), {"date": DAY.isoformat()})
    assert response.status_code == 200
    html = response.content.decode()
    for sign in SIGNS:
        assert sign.name in html
    assert html.count("No reading was written for this date.") == 1
    assert "being written" not in html and "check back" not in html.lower()  # nothing will write a past date
    assert Forecast.objects.get(date=DAY, sign="aries").headline in html
    assert "<svg" in html  # the sky wheel of that date


@pytest.mark.django_db
def test_today_on_a_fresh_site_writes_the_visitors_dates_readings_at_once(kb, client):
    # 10:30 UTC: UTC-12, the date a visitor we know nothing about is shown, is still on 4 December.
    with time_machine.travel(datetime(2026, 12, 5, 10, 30, tzinfo=UTC), tick=False):
        response = client.get(reverse("forecasts:today"))
    assert response.status_code == 200
    html = response.content.decode()
    written = Forecast.objects.ready().filter(date=date(2026, 12, 4))
    assert written.count() == 12 and set(written.values_list("generator", flat=True)) == {"offline"}
    assert Forecast.objects.count() == 12
    assert all(forecast.headline in html for forecast in written)
    # The dates after it are today elsewhere: offered, each a link.
    assert "?date=2026-12-05" in html and "?date=2026-12-06" in html and "?date=2026-12-07" not in html


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
    # 18:00 UTC on DAY: DAY everywhere from UTC-12 (06:00) to UTC+9:30.
    with time_machine.travel(datetime.combine(DAY, time(18, 0), tzinfo=UTC), tick=False):
        response = client.get(reverse("forecasts:sign", args=["virgo"]))
    html = response.content.decode()
    assert response.status_code == 200
    today_forecast = Forecast.objects.get(date=DAY, sign="virgo")
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
def test_an_admin_edit_of_a_forecast_whose_states_do_not_say_when_they_hold_is_checked_not_a_500(admin_client):
    # Facts edited by hand may lose a state's valid_from/valid_until: the sky check then does not
    # count that state as holding all day, and the form still answers.
    facts = [{k: v for k, v in f.items() if k not in ("valid_from", "valid_until")} for f in sample_facts(DAY)]
    forecast = Forecast.objects.create(
        date=DAY, sign="leo", status=Forecast.Status.APPROVED, headline="A day", overview="Rest.", facts=facts
    )
    url = reverse("admin:forecasts_forecast_change", args=[forecast.pk])
    assert admin_client.get(url).status_code == 200
    saved = admin_client.post(url, _admin_form(forecast, overview="The Moon enters Leo: the mood lifts."))
    assert saved.status_code in (200, 302), saved.status_code


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
def test_forecasts_prepare_command_writes_every_date_on_earth_and_the_next_by_default(kb, settings):
    settings.FORECAST_GENERATOR = OFFLINE
    out = StringIO()
    # 23:30 UTC on 5 December: the 5th from UTC-12 to UTC+0, the 6th from UTC+1 to UTC+14.
    with time_machine.travel(datetime(2026, 12, 5, 23, 30, tzinfo=UTC), tick=False):
        call_command("forecasts_prepare", stdout=out)
    today = date(2026, 12, 5)
    for day in ("2026-12-05", "2026-12-06", "2026-12-07"):
        assert f"{day}: 12 written" in out.getvalue()
    assert "2026-12-04" not in out.getvalue() and "2026-12-08" not in out.getvalue()
    out = StringIO()
    call_command("forecasts_prepare", "--date", today.isoformat(), stdout=out)
    assert "0 written, 12 already done" in out.getvalue()
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("forecasts_prepare", "--date", "next tuesday")


@pytest.mark.django_db
def test_site_prepare_loads_the_knowledge_base_and_writes_every_date_on_earth(settings):
    settings.FORECAST_GENERATOR = "forecasts.writing.generators.openai_responses.OpenAIGenerator"  # not used by it
    out = StringIO()
    # 10:30 UTC on 5 December: still the 4th at UTC-12, already the 6th at UTC+14; the 7th begins next.
    with time_machine.travel(datetime(2026, 12, 5, 10, 30, tzinfo=UTC), tick=False):
        call_command("site_prepare", stdout=out)
    dates = [date(2026, 12, day) for day in (4, 5, 6, 7)]
    assert Forecast.objects.ready().filter(date__in=dates).count() == 48 == Forecast.objects.count()
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
