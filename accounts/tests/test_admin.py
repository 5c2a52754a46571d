"""The admin: lists without per-row queries, filters, search and the status actions."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Subscription
from accounts.tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(email="boss@example.test", is_staff=True, is_superuser=True))
    return client


def query_count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", ["/admin/accounts/subscription/", "/admin/accounts/user/"])
def test_changelists_do_not_query_per_row(admin_client, url):
    SubscriptionFactory.create_batch(2)
    few = query_count(admin_client, url)
    SubscriptionFactory.create_batch(15)
    assert query_count(admin_client, url) == few


def test_filters_and_search(admin_client):
    SubscriptionFactory(user=UserFactory(email="lion@example.test"), sign="leo", time_zone="Europe/Rome")
    SubscriptionFactory(
        user=UserFactory(email="fish@example.test"), sign="pisces", time_zone="Asia/Tokyo", status="paused"
    )
    base = "/admin/accounts/subscription/"
    for query, shown, hidden in [
        ("?sign=leo", "lion@", "fish@"),
        ("?status=paused", "fish@", "lion@"),
        ("?time_zone=Asia/Tokyo", "fish@", "lion@"),
        ("?q=lion", "lion@", "fish@"),
    ]:
        html = admin_client.get(base + query).content.decode()
        assert shown in html and hidden not in html, query


def test_actions_change_status_through_the_services(admin_client, mailoutbox):
    active = SubscriptionFactory()
    paused = SubscriptionFactory(status="paused")
    pending = SubscriptionFactory(status="pending")
    url = "/admin/accounts/subscription/"

    def act(action, *subscriptions):
        return admin_client.post(
            url, {"action": action, "_selected_action": [s.pk for s in subscriptions]}, follow=True
        )

    act("pause_subscriptions", active, paused)
    assert Subscription.objects.get(pk=active.pk).status == "paused"
    act("resume_subscriptions", active, paused)
    assert set(Subscription.objects.filter(pk__in=[active.pk, paused.pk]).values_list("status", flat=True)) == {
        "active"
    }
    response = act("resend_confirmation", pending, active)
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [pending.user.email]
    assert "Left as they were" in response.content.decode()
    act("unsubscribe_subscriptions", active)
    stored = Subscription.objects.get(pk=active.pk)
    assert stored.status == "unsubscribed" and "boss@example.test" in stored.status_reason


def test_next_send_at_is_read_only(admin_client):
    subscription = SubscriptionFactory()
    html = admin_client.get(f"/admin/accounts/subscription/{subscription.pk}/change/").content.decode()
    assert 'name="next_send_at"' not in html and 'name="status"' not in html
    assert 'name="time_zone"' in html


def test_addresses_saved_with_capitals_are_lower_cased_unless_another_account_has_that_form():
    from importlib import import_module

    from django.apps import apps

    from accounts.models import User

    migration = import_module("accounts.migrations.0003_user_email_lower_case")
    ann, bob, bob_twin = UserFactory(), UserFactory(email="bob@example.test"), UserFactory()
    cy, cy_twin = UserFactory(), UserFactory()
    User.objects.filter(pk=ann.pk).update(email="Ann@Example.test")
    User.objects.filter(pk=bob_twin.pk).update(email="Bob@Example.test")
    User.objects.filter(pk=cy.pk).update(email="Cy@Example.test")
    User.objects.filter(pk=cy_twin.pk).update(email="CY@example.test")

    migration.lower_case_addresses(apps, None)

    emails = dict(User.objects.values_list("pk", "email"))
    assert (emails[ann.pk], emails[bob.pk], emails[bob_twin.pk]) == (
        "ann@example.test",
        "bob@example.test",
        "Bob@Example.test",  # left for a person to decide
    )
    # Two spellings of one address, neither lower-case: the first is lowered, the other then waits.
    assert (emails[cy.pk], emails[cy_twin.pk]) == ("cy@example.test", "CY@example.test")
