"""Readings for every date on Earth: prepared ahead, written on demand for a date that is today
somewhere, said plainly missing for the past, and no date that has not begun for the viewer.

Instants are chosen where dates differ: at 10:30 UTC three dates exist (the 4th at UTC-12, the
6th at UTC+14), at 23:30 UTC two (the 5th in the west, the 6th from UTC+1 on).
"""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import SubscriptionFactory, UserFactory
from forecasts.earth_dates import DateState, date_state, dates_on_earth, dates_to_prepare, latest_date
from forecasts.models import Forecast
from forecasts.tasks import forecasts_prepare_task
from forecasts.web import readings
from forecasts.writing.generation import forecasts_missing
from forecasts.zodiac import SIGN_SLUGS
from tests.support.concurrency import at_once

MORNING = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)  # 4th, 5th and 6th December on Earth
NIGHT = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)  # 5th and 6th December


def d(day: int) -> date:
    return date(2026, 12, day)


def test_two_or_three_dates_exist_on_earth_at_any_instant():
    assert dates_on_earth(MORNING) == [d(4), d(5), d(6)]
    assert dates_on_earth(NIGHT) == [d(5), d(6)]
    assert dates_on_earth(datetime(2026, 12, 5, 9, 59, tzinfo=UTC)) == [d(4), d(5)]  # UTC+14 not yet on the 6th
    assert dates_on_earth(datetime(2026, 12, 5, 12, 0, tzinfo=UTC)) == [d(5), d(6)]  # UTC-12 has left the 4th
    assert [date_state(d(n), MORNING) for n in (3, 4, 6, 7)] == [
        DateState.PAST,
        DateState.CURRENT,
        DateState.CURRENT,
        DateState.FUTURE,
    ]
    # The beat's runs: at 08:00 UTC (days_ahead=1) the 4th is still owed to UTC-12's readers.
    assert dates_to_prepare(datetime(2026, 12, 5, 8, 0, tzinfo=UTC), 1) == [d(4), d(5), d(6)]
    assert dates_to_prepare(datetime(2026, 12, 5, 20, 0, tzinfo=UTC), 2) == [d(5), d(6), d(7)]


@pytest.mark.django_db
def test_the_periodic_preparation_covers_every_date_on_earth(settings):
    from horoscope_site.celery import app

    settings.FORECAST_GENERATOR = "forecasts.writing.generators.offline.OfflineComposer"
    app.conf.task_always_eager = True
    try:
        with time_machine.travel(datetime(2026, 12, 5, 8, 0, tzinfo=UTC), tick=False):
            result = forecasts_prepare_task.delay(days_ahead=1).get()
    finally:
        app.conf.task_always_eager = False
    assert len(result["queued"]) == 36 and result["queued"][0] == "2026-12-04 aries"
    assert forecasts_missing(d(4), 3) == []


@pytest.fixture
def leo_written(db):
    """Leo's readings of the 3rd to the 6th."""
    return {
        n: Forecast.objects.create(date=d(n), sign="leo", status="draft", headline=f"Leo on the {n}th")
        for n in (3, 4, 5, 6)
    }


def archive_headlines(html: str) -> list[str]:
    archive = html.split("Earlier readings", 1)[1]
    return [f"Leo on the {n}th" for n in (3, 4, 5, 6) if f"Leo on the {n}th" in archive]


@pytest.mark.django_db
def test_a_sign_pages_earlier_readings_never_list_a_date_that_has_not_begun_for_the_viewer(leo_written, client):
    with time_machine.travel(NIGHT, tick=False):
        # A visitor: the date at UTC-12 (the 5th), whatever their zone; the 6th is offered as a link.
        visitor = client.get("/signs/leo/").content.decode()
        assert "Leo: today, 5 December 2026" in visitor and "Leo on the 5th" in visitor
        assert archive_headlines(visitor) == ["Leo on the 3th", "Leo on the 4th"]
        assert 'href="/signs/leo/2026-12-06/">Sunday 6 December</a> somewhere on Earth' in visitor

        # A reader in New York (18:30 on the 5th): nothing of the 6th, not even the link.
        new_york = UserFactory()
        SubscriptionFactory(user=new_york, sign="virgo", time_zone="America/New_York")
        client.force_login(new_york)
        page = client.get("/signs/leo/").content.decode()
        assert "Leo: today, 5 December 2026" in page
        assert archive_headlines(page) == ["Leo on the 3th", "Leo on the 4th"]
        assert "2026-12-06" not in page and "Leo on the 6th" not in page

        # A reader in Tokyo (08:30 on the 6th): their today is the 6th, the 5th is an earlier reading.
        tokyo = UserFactory()
        SubscriptionFactory(user=tokyo, sign="virgo", time_zone="Asia/Tokyo")
        client.force_login(tokyo)
        page = client.get("/signs/leo/").content.decode()
        assert "Leo: today, 6 December 2026" in page and "Leo on the 6th" in page
        assert archive_headlines(page) == ["Leo on the 3th", "Leo on the 4th", "Leo on the 5th"]


@pytest.mark.django_db
def test_a_date_page_says_plainly_what_is_missing_and_writes_only_a_date_that_is_today_somewhere(client):
    with time_machine.travel(MORNING, tick=False):
        past = client.get("/signs/leo/2026-12-03/").content.decode()
        future = client.get("/signs/leo/2026-12-07/").content.decode()
        today_in_kiribati = client.get("/signs/leo/2026-12-06/").content.decode()
        all_signs_past = client.get("/today/", {"date": "2026-12-01"}).content.decode()
    assert "No reading was written for this date." in past
    assert "has not begun anywhere on Earth yet" in future
    assert all_signs_past.count("No reading was written for this date.") == 12
    # Only the date that is today somewhere got its reading; its page has no "next" into the future.
    (written,) = Forecast.objects.all()
    assert (written.date, written.sign, written.generator) == (d(6), "leo", "offline")
    assert written.headline in today_in_kiribati
    assert "/signs/leo/2026-12-07/" not in today_in_kiribati and "/signs/leo/2026-12-05/" in today_in_kiribati
    assert "/signs/leo/2026-12-06/" in future  # a hand-typed future date links back to one that has begun
    assert "/signs/leo/2026-12-08/" not in future


@pytest.mark.django_db(transaction=True)
def test_two_visitors_asking_for_a_missing_reading_at_once_get_the_same_one_written_once():
    from django.test import Client

    day = latest_date(timezone.now())  # today at UTC+14: a date that exists on Earth, whenever this runs
    url = reverse("forecasts:sign_day", args=["scorpio", day.isoformat()])

    pages = at_once(lambda: Client().get(url).content.decode(), times=3)

    (forecast,) = Forecast.objects.filter(sign="scorpio")
    assert forecast.is_ready and forecast.date == day
    assert all(forecast.headline in page for page in pages)


@pytest.mark.django_db
def test_a_reading_another_writer_holds_is_waited_for_briefly_then_said_to_be_on_its_way(client, monkeypatch):
    monkeypatch.setattr(readings, "ON_DEMAND_WAIT_SECONDS", 0.3)
    with time_machine.travel(MORNING, tick=False):
        Forecast.objects.create(date=d(5), sign="leo", claimed_at=timezone.now())  # a worker's fresh claim
        page = client.get("/signs/leo/2026-12-05/").content.decode()
    assert "This reading is being written right now. Reload the page in a moment." in page
    assert Forecast.objects.get().status == Forecast.Status.GENERATING


@pytest.mark.django_db
def test_every_sign_page_asks_visitors_to_subscribe_with_that_sign_chosen(client, leo_written):
    for slug in SIGN_SLUGS:
        page = client.get(f"/signs/{slug}/").content.decode()
        assert f'href="/accounts/signup/?sign={slug}"' in page, slug
    signup = client.get("/accounts/signup/?sign=leo").content.decode()
    assert '<option value="leo" selected>' in signup
    unknown = client.get("/accounts/signup/?sign=ophiuchus").content.decode()
    assert '<option value="" selected>' in unknown  # ignored: the form starts as usual


@pytest.mark.django_db
def test_a_reader_is_sent_to_preferences_from_another_signs_page_and_not_asked_on_their_own(client):
    reader = UserFactory()
    SubscriptionFactory(user=reader, sign="leo", time_zone="Europe/Paris")
    client.force_login(reader)
    own = client.get("/signs/leo/").content.decode()
    other = client.get("/signs/virgo/").content.decode()
    assert "subscribe-cta" not in own
    assert 'href="/portal/preferences/"' in other.split("subscribe-cta", 1)[1]
    assert "/accounts/signup/" not in other


def test_no_future_date_link_from_the_all_signs_page_of_the_latest_date(client, db):
    with time_machine.travel(NIGHT, tick=False):
        html = client.get("/today/", {"date": "2026-12-06"}).content.decode()
    assert "?date=2026-12-05" in html and "?date=2026-12-07" not in html


@pytest.mark.django_db
def test_next_links_stop_at_the_viewers_own_date_when_their_zone_is_known(client, leo_written):
    with time_machine.travel(NIGHT, tick=False):
        new_york = client.get("/signs/leo/2026-12-05/", {"tz": "America/New_York"}).content.decode()
        tokyo = client.get("/signs/leo/2026-12-05/", {"tz": "Asia/Tokyo"}).content.decode()
        reader = UserFactory()
        SubscriptionFactory(user=reader, sign="leo", time_zone="America/New_York")
        client.force_login(reader)
        all_signs = client.get("/today/").content.decode()
    assert "/signs/leo/2026-12-06/" not in new_york  # 18:30 on the 5th in New York
    assert "/signs/leo/2026-12-06/" in tokyo  # 08:30 on the 6th in Tokyo
    assert "?date=2026-12-04" in all_signs and "2026-12-06" not in all_signs
