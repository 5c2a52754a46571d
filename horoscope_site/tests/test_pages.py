"""About, Privacy and Terms: reachable from every page's footer and the sign-up form, with the contact address."""

import pytest

from horoscope_site.tests.test_config import run_manage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "heading", "says"),
    [
        ("/about/", "About Daily Horoscope", "never told who you are"),
        ("/privacy/", "Privacy", "Download or delete your data"),
        ("/terms/", "Terms", "entertainment and reflection"),
    ],
)
def test_each_page_names_the_contact_address_from_settings(client, settings, url, heading, says):
    settings.CONTACT_EMAIL = "hello@horoscope.example"
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"<h1>{heading}</h1>" in html and says in html
    assert 'href="mailto:hello@horoscope.example"' in html


def test_privacy_says_what_is_kept_for_how_long_and_where_to_export_and_delete(client):
    html = client.get("/privacy/").content.decode()
    for stored in ("email address", "birth date", "time zone", "IP address", "Amazon SES"):
        assert stored in html
    assert "after 14 days" in html  # Django's session length
    assert 'href="/portal/account/"' in html


def test_the_footer_links_every_page_and_the_contact_address(client, settings):
    settings.CONTACT_EMAIL = "hello@horoscope.example"
    html = client.get("/").content.decode()
    for href in ('href="/about/"', 'href="/privacy/"', 'href="/terms/"', 'href="mailto:hello@horoscope.example"'):
        assert href in html


@pytest.mark.parametrize(
    ("env", "contact"),
    [
        ({"DEFAULT_FROM_EMAIL": "Daily Horoscope <stars@horoscope.example>"}, "stars@horoscope.example"),
        (
            {"DEFAULT_FROM_EMAIL": "stars@horoscope.example", "CONTACT_EMAIL": "people@horoscope.example"},
            "people@horoscope.example",
        ),
    ],
)
def test_the_contact_address_is_the_sender_unless_set(env, contact, tmp_path):
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.CONTACT_EMAIL)",
        VAR_DIR=str(tmp_path),
        CONTACT_EMAIL=env.pop("CONTACT_EMAIL", ""),
        **env,
    )
    assert result.stdout.strip().splitlines()[-1] == contact, result.stderr
