"""Sign pages and the dashboard keep what every viewer shares in the cache (forecasts/reading_cache.py):
a second request reads no Forecast row, an edit or a rewrite shows on the very next request, and each
viewer still gets their own zone, topics and date."""

from datetime import date

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from accounts.tests.factories import SubscriptionFactory, UserFactory
from forecasts.models import Forecast
from forecasts.tests.factories import ForecastFactory
from forecasts.tests.web.leo_day import AFTERNOON, DAY
from forecasts.web import readings, shared_reading
from forecasts.writing.generation import forecast_claim, forecasts_prepare
from forecasts.writing.knowledge import knowledge_load
from tests.support.concurrency import at_once


def forecast_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "forecasts_forecast" in q["sql"]]


def reader_client(time_zone: str, topics: list[str] | None = None) -> Client:
    reader = UserFactory()
    SubscriptionFactory(user=reader, sign="leo", time_zone=time_zone, topics=topics or ["love", "money"])
    client = Client()
    client.force_login(reader)
    return client


@pytest.mark.django_db
def test_a_sign_pages_second_request_reads_nothing_from_the_database(
    leo_today, afternoon, client, monkeypatch, without_visitor_pages
):
    first = client.get("/signs/leo/").content.decode()
    built = []
    monkeypatch.setattr(shared_reading.SharedReading, "from_forecast", lambda forecast: built.append(forecast))
    with CaptureQueriesContext(transaction.get_connection()) as queries:
        second = client.get("/signs/leo/").content.decode()
    assert queries.captured_queries == [] and built == []
    assert second == first and "Leo: today, 9 March 2025" in second and leo_today.headline.split()[0] in second
    assert 'href="/accounts/signup/?sign=leo"' in second  # the visitor's own call to subscribe, not cached


@pytest.mark.django_db
def test_the_dashboard_reads_its_reading_from_the_cache(leo_today, afternoon):
    paris = reader_client("Europe/Paris")
    first = paris.get("/portal/").content.decode()
    with CaptureQueriesContext(transaction.get_connection()) as queries:
        second = paris.get("/portal/").content.decode()
    assert forecast_queries(queries) == []
    assert "at 15:32 this afternoon" in first and "at 15:32 this afternoon" in second


@pytest.mark.django_db
def test_each_viewer_gets_their_own_zone_topics_and_call_to_subscribe_from_the_shared_reading(leo_today, afternoon):
    paris = reader_client("Europe/Paris", topics=["love"]).get("/portal/").content.decode()
    new_york = reader_client("America/New_York", topics=["money"]).get("/portal/").content.decode()
    assert "The Moon enters Leo at 15:32 this afternoon, and the mood lifts." in paris
    assert "The Moon enters Leo at 10:32 this morning, and the mood lifts." in new_york
    assert "Love: listen before you answer." in paris and "Money: count twice" not in paris
    assert "Money: count twice, spend once." in new_york and "Love: listen" not in new_york
    assert "(Europe/Paris)" in paris and "(America/New_York)" in new_york  # "In the sky", in their zones
    # The web version of the email, for two zones from the one cached reading.
    url = reverse("forecasts:sign_day", args=["leo", DAY.isoformat()])
    assert "at 03:32 in the small hours of tomorrow" in Client().get(url, {"tz": "Pacific/Auckland"}).content.decode()
    assert "at 15:32 this afternoon" in Client().get(url, {"tz": "Europe/Paris"}).content.decode()
    # A leo reader is not asked to subscribe on the leo page; a visitor is, from the same cached page.
    assert "subscribe-cta" not in reader_client("Europe/Paris").get("/signs/leo/").content.decode()
    assert "subscribe-cta" in Client().get("/signs/leo/").content.decode()


@pytest.mark.django_db
def test_a_sign_page_writes_times_in_the_viewers_zone_when_it_is_known(leo_today, afternoon, without_visitor_pages):
    visitor = Client().get("/signs/leo/").content.decode()
    paris_reader = reader_client("Europe/Paris").get("/signs/leo/").content.decode()
    asked_for_new_york = Client().get("/signs/leo/", {"tz": "America/New_York"}).content.decode()
    visitor_again = Client().get("/signs/leo/").content.decode()  # nobody's zone leaks into the shared page

    assert "The Moon enters Leo at 14:32 UTC, and the mood lifts." in visitor
    assert "The Moon enters Leo at 15:32 this afternoon, and the mood lifts." in paris_reader
    assert "The Moon enters Leo at 10:32 this morning, and the mood lifts." in asked_for_new_york
    assert visitor_again == visitor
    day_page = reader_client("Europe/Paris").get(reverse("forecasts:sign_day", args=["leo", DAY.isoformat()]))
    assert "at 15:32 this afternoon" in day_page.content.decode()  # the web version of their email too


def _admin_form(forecast: Forecast, **changes) -> dict:
    data = {"headline": forecast.headline, "overview": forecast.overview, "override_grounding": "on"}
    data.update({f"section_{topic}": text for topic, text in forecast.sections.items()})
    data.update(changes)
    return data


@pytest.fixture
def written_by_the_composer(db, settings):
    knowledge_load()
    settings.FORECAST_GENERATOR = "forecasts.writing.generators.offline.OfflineComposer"
    forecasts_prepare(DAY)
    return Forecast.objects.get(date=DAY, sign="leo")


@pytest.mark.django_db(transaction=True)
def test_an_admin_edit_shows_on_the_very_next_sign_page_and_dashboard(written_by_the_composer, afternoon, admin_client):
    leo = written_by_the_composer
    reader = reader_client("Europe/Paris")
    assert escape(leo.headline) in Client().get("/signs/leo/").content.decode()
    assert escape(leo.headline) in reader.get("/portal/").content.decode()

    url = reverse("admin:forecasts_forecast_change", args=[leo.pk])
    edited = _admin_form(leo, headline="Edited by the editor", overview="New words [[at:2025-03-09T14:32Z]].")
    assert admin_client.post(url, edited).status_code == 302

    page, dashboard = Client().get("/signs/leo/").content.decode(), reader.get("/portal/").content.decode()
    assert "Edited by the editor" in page and escape(leo.headline) not in page
    assert "New words at 14:32 UTC." in page  # a visitor: UTC
    assert "Edited by the editor" in dashboard and "New words at 15:32 this afternoon." in dashboard


@pytest.mark.django_db(transaction=True)
def test_an_edit_of_an_earlier_reading_shows_in_the_archive(written_by_the_composer, afternoon, admin_client):
    forecasts_prepare(date(2025, 3, 8))
    earlier = Forecast.objects.get(date=date(2025, 3, 8), sign="leo")
    assert escape(earlier.headline) in Client().get("/signs/leo/").content.decode()
    url = reverse("admin:forecasts_forecast_change", args=[earlier.pk])
    assert admin_client.post(url, _admin_form(earlier, headline="Yesterday, retold")).status_code == 302
    assert "Yesterday, retold" in Client().get("/signs/leo/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_admins_rewrite_action_shows_on_the_very_next_request(written_by_the_composer, afternoon, admin_client):
    leo = written_by_the_composer
    reader = reader_client("Europe/Paris")
    url = reverse("admin:forecasts_forecast_change", args=[leo.pk])
    assert admin_client.post(url, _admin_form(leo, headline="A hand-written headline")).status_code == 302
    assert "A hand-written headline" in Client().get("/signs/leo/").content.decode()
    assert "A hand-written headline" in reader.get("/portal/").content.decode()

    changelist = reverse("admin:forecasts_forecast_changelist")
    admin_client.post(changelist, {"action": "regenerate", "_selected_action": [leo.pk]})

    rewritten = Forecast.objects.get(pk=leo.pk)
    assert rewritten.headline != "A hand-written headline" and rewritten.edited_by is None
    for html in (Client().get("/signs/leo/").content.decode(), reader.get("/portal/").content.decode()):
        assert "A hand-written headline" not in html
        assert escape(rewritten.headline) in html


@pytest.mark.django_db(transaction=True)
def test_a_page_built_from_the_old_rows_while_an_edit_commits_is_not_kept(leo_today, afternoon):
    """The version moves again after the commit: a page read from the old row between the save
    and the commit (by another connection) is rebuilt on the next request."""
    url = "/signs/leo/"
    with transaction.atomic():
        leo_today.headline = "Committed later"
        leo_today.save()
        (meanwhile,) = at_once(lambda: Client().get(url).content.decode(), times=1)
        assert "Say it plainly" in meanwhile  # another connection still reads the committed row
    assert "Committed later" in Client().get(url).content.decode()


@pytest.mark.django_db
def test_a_date_without_a_reading_is_never_cached_as_missing(client):
    url = reverse("forecasts:sign_day", args=["leo", "2025-03-01"])
    with time_machine.travel(AFTERNOON, tick=False):
        assert "No reading was written for this date." in client.get(url).content.decode()
        ForecastFactory(date=date(2025, 3, 1), sign="leo", headline="Found at last")
        assert "Found at last" in client.get(url).content.decode()
        Forecast.objects.get(date=date(2025, 3, 1)).delete()
        assert "No reading was written for this date." in client.get(url).content.decode()


@pytest.mark.django_db
def test_a_reading_claimed_to_be_written_again_leaves_the_pages_at_once(leo_today, afternoon, client, monkeypatch):
    monkeypatch.setattr(readings, "ON_DEMAND_WAIT_SECONDS", 0.3)
    url = reverse("forecasts:sign_day", args=["leo", DAY.isoformat()])
    assert "Say it plainly" in client.get(url).content.decode()

    forecast_claim(DAY, "leo", force=True)  # a rewrite has begun: the old text is no longer the reading

    page = client.get(url).content.decode()
    assert "Say it plainly" not in page and "being written right now" in page


@pytest.mark.django_db
def test_a_signed_in_readers_sign_page_reads_their_subscription_once(leo_today, afternoon):
    paris = reader_client("Europe/Paris")
    paris.get("/signs/leo/")
    with CaptureQueriesContext(transaction.get_connection()) as queries:
        page = paris.get("/signs/leo/").content.decode()
    reads = [q["sql"] for q in queries.captured_queries if '"accounts_subscription"' in q["sql"]]
    # Its zone and its call to subscribe come from one read, the one that loads the user.
    assert len(reads) == 1 and 'FROM "accounts_user" LEFT OUTER JOIN "accounts_subscription"' in reads[0], reads
    assert "at 15:32 this afternoon" in page and "subscribe-cta" not in page
