"""A visitor's sign page is served from the web process's memory before the session, CSRF and
login middleware run (forecasts/web/visitor_pages.py), and never to anyone it was not built for."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from django.urls import ResolverMatch
from django.utils.html import escape

from accounts.tests.factories import SubscriptionFactory, UserFactory
from forecasts.tests.web.leo_day import AFTERNOON
from forecasts.web import views, visitor_pages
from forecasts.web.visitor_pages import VisitorPageCacheMiddleware, visitor_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def views_built(monkeypatch):
    """How many times the sign page's view built its page."""
    built = []
    shared = views._sign_page_shared
    monkeypatch.setattr(views, "_sign_page_shared", lambda *args: built.append(args) or shared(*args))
    return built


def test_a_visitors_second_request_is_served_from_memory_with_the_sites_headers(
    leo_today, afternoon, views_built, django_assert_num_queries
):
    first = Client().get("/signs/leo/")
    with django_assert_num_queries(0):
        second = Client().get("/signs/leo/")
    assert len(views_built) == 1  # the view ran for the first request only
    assert second.status_code == 200 and second.content == first.content
    assert "The Moon enters Leo at 14:32 UTC, and the mood lifts." in second.content.decode()
    # The headers the middleware around it and the view's own set, as on the first.
    for header in ("Content-Type", "X-Frame-Options", "X-Content-Type-Options", "Content-Security-Policy"):
        assert second.headers[header] == first.headers[header], header
    assert not second.cookies


def test_an_edit_shows_to_the_next_visitor(leo_today, afternoon, views_built):
    assert escape(leo_today.headline) in Client().get("/signs/leo/").content.decode()
    leo_today.headline = "Edited by the editor"
    leo_today.save()  # as the admin's change form does: the sign's version moves
    page = Client().get("/signs/leo/").content.decode()
    assert "Edited by the editor" in page and len(views_built) == 2


def test_a_signed_in_reader_never_gets_a_visitors_page(leo_today, afternoon):
    Client().get("/signs/leo/")
    reader = UserFactory()
    SubscriptionFactory(user=reader, sign="leo", time_zone="Europe/Paris")
    client = Client()
    client.force_login(reader)
    page = client.get("/signs/leo/").content.decode()
    assert "at 15:32 this afternoon" in page  # their zone, not the visitor's UTC
    assert "subscribe-cta" not in page and "Log out" in page
    # ...and a visitor after them still gets the visitor's page, not the reader's.
    assert "Subscribe as Leo" in Client().get("/signs/leo/").content.decode()


def test_a_visitor_with_a_session_or_a_message_waiting_gets_their_own_page(leo_today, afternoon, views_built):
    Client().get("/signs/leo/")
    for cookie in ("sessionid", "messages"):
        client = Client()
        client.cookies[cookie] = "theirs"
        assert client.get("/signs/leo/").status_code == 200
    assert len(views_built) == 3


def test_each_zone_asked_for_has_its_own_page(leo_today, afternoon):
    assert "at 14:32 UTC" in Client().get("/signs/leo/").content.decode()
    paris = Client().get("/signs/leo/?tz=Europe/Paris").content.decode()
    assert "at 15:32 this afternoon" in paris and "at 14:32 UTC" not in paris
    assert "at 14:32 UTC" in Client().get("/signs/leo/").content.decode()


def test_a_page_is_not_served_once_another_date_has_begun_somewhere(leo_today):
    with time_machine.travel(AFTERNOON, tick=False):
        assert "Tuesday 11 March" not in Client().get("/signs/leo/").content.decode()
    # 10:30 UTC the next day: still 9 March at UTC-12, and now 11 March at UTC+14.
    with time_machine.travel(datetime(2025, 3, 10, 10, 30, tzinfo=UTC), tick=False):
        page = Client().get("/signs/leo/").content.decode()
    assert "Leo: today, 9 March 2025" in page and "Tuesday 11 March" in page


def test_a_date_without_its_reading_yet_is_never_kept(afternoon, views_built, monkeypatch):
    monkeypatch.setattr(views, "reading_for_page", lambda *args: None)
    for _ in range(2):
        assert "being written right now" in Client().get("/signs/leo/").content.decode()
    assert len(views_built) == 2


def test_a_page_holding_a_csrf_token_is_never_kept(leo_today, afternoon, views_built, monkeypatch):
    render = views.render

    def with_a_form(request, *args, **kwargs):
        get_token(request)  # what {% csrf_token %} in the template does
        return render(request, *args, **kwargs)

    monkeypatch.setattr(views, "render", with_a_form)
    client = Client()
    client.cookies["csrftoken"] = "a" * 32  # theirs already: Django sends it again all the same
    for _ in range(2):
        assert client.get("/signs/leo/").status_code == 200
        assert Client().get("/signs/leo/").status_code == 200
    assert len(views_built) == 4


@pytest.mark.django_db(transaction=True)
def test_the_version_is_read_before_the_page_is_built(leo_today, afternoon, monkeypatch):
    """An edit committed while a visitor's page is being built is shown to the next visitor."""
    shared = views._sign_page_shared

    def edited_meanwhile(*args):
        parts = shared(*args)
        monkeypatch.setattr(views, "_sign_page_shared", shared)
        leo_today.headline = "Committed meanwhile"
        leo_today.save()
        return parts

    monkeypatch.setattr(views, "_sign_page_shared", edited_meanwhile)
    assert "Committed meanwhile" not in Client().get("/signs/leo/").content.decode()
    assert "Committed meanwhile" in Client().get("/signs/leo/").content.decode()


def test_a_zone_asked_for_that_shares_the_visitors_date_still_has_its_own_page(leo_today, afternoon):
    assert "at 14:32 UTC" in Client().get("/signs/leo/").content.decode()
    asked = Client().get("/signs/leo/", {"tz": "Etc/GMT+12"}).content.decode()  # UTC-12, as for a visitor
    assert "at 14:32 UTC" not in asked and "at 02:32" in asked


def test_head_requests_other_hosts_and_unknown_signs_are_not_served_from_memory(leo_today, afternoon, views_built):
    Client().get("/signs/leo/")
    assert Client().head("/signs/leo/").status_code == 200
    assert len(views_built) == 2  # built again: HEAD is never served from memory
    assert Client(HTTP_HOST="evil.example").get("/signs/leo/").status_code == 400
    assert Client().get("/signs/nosuchsign/").status_code == 404


def test_a_response_for_another_sign_that_sets_a_cookie_or_fails_is_never_kept(monkeypatch):
    responses = []

    def view(request):
        response, sign = responses.pop(0)
        response.visitor_page = (sign, "page")
        return response

    marked = visitor_page(lambda request: ("leo", "page"))(lambda request: None)
    monkeypatch.setattr(visitor_pages, "resolve", lambda path: ResolverMatch(marked, (), {}))
    middleware = VisitorPageCacheMiddleware(view)
    with_cookie = HttpResponse("with a cookie")
    with_cookie.set_cookie("csrftoken", "theirs")
    responses += [(HttpResponse("virgo's"), "virgo"), (with_cookie, "leo"), (HttpResponse("failed", status=500), "leo")]
    responses += [(HttpResponse("fine"), "leo"), (HttpResponse("not asked for"), "leo")]

    served = [middleware(RequestFactory().get("/signs/leo/")).content for _ in range(5)]

    assert served == [b"virgo's", b"with a cookie", b"failed", b"fine", b"fine"]
    assert [response.content for response, _ in responses] == [b"not asked for"]
