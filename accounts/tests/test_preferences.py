"""The preferences form: derived and cusp signs, validation, and never a 500 whatever is posted."""

import re
from datetime import date, time

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.forms import PreferencesForm
from accounts.models import Subscription
from accounts.scheduling import known_time_zones

pytestmark = pytest.mark.django_db

URL = "/portal/preferences/"
FIELDS = ["sign", "birth_date", "birth_time", "birth_place", "time_zone", "delivery_time", "topics"]


def valid(**overrides) -> dict:
    data = {
        "sign": "",
        "birth_date": "1990-07-30",
        "birth_time": "",
        "birth_place": "",
        "time_zone": "Europe/Paris",
        "delivery_time": "06:00",
        "topics": ["love", "career"],
    }
    data.update(overrides)
    return data


def field_block(html: str, name: str) -> str:
    """The HTML of one field's container, where its label, help and errors live."""
    match = re.search(
        rf'<div class="field field-{name}[^"]*">(.*?)</div>\s*(?=<div class="field|<div class="form-actions)',
        html,
        re.S,
    )
    assert match, f"no field block for {name}"
    return match.group(0)


def test_a_new_reader_is_sent_to_preferences_and_starts_active(reader_client, reader):
    response = reader_client.get("/portal/")
    assert response.status_code == 302 and response["Location"] == URL
    page = reader_client.get(URL).content.decode()
    assert "data-timezone-suggest" in page
    assert 'src="/static/js/timezone.js"' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "no inline scripts (CSP)"
    assert "as if the clocks had not changed yet" in page  # the DST rule, documented

    response = reader_client.post(URL, valid())
    assert response.status_code == 302 and response["Location"] == "/portal/"
    subscription = Subscription.objects.get(user=reader)
    assert subscription.sign == "leo"  # derived from 30 July
    assert subscription.status == Subscription.Status.ACTIVE  # the address was already verified
    assert subscription.topics == ["love", "career"]
    assert subscription.next_send_at is not None


def test_a_chosen_sign_overrides_the_birth_date(reader_client, reader):
    reader_client.post(URL, valid(sign="virgo"))
    assert Subscription.objects.get(user=reader).sign == "virgo"


def test_a_sign_without_a_birth_date_is_enough(reader_client, reader):
    reader_client.post(URL, valid(sign="pisces", birth_date=""))
    assert Subscription.objects.get(user=reader).sign == "pisces"


def test_cusp_birth_dates_offer_a_clear_choice_between_the_two_signs(reader_client, reader):
    response = reader_client.post(URL, valid(birth_date="1990-03-20"))
    assert response.status_code == 200
    assert not Subscription.objects.filter(user=reader).exists()
    block = field_block(response.content.decode(), "sign")
    assert "20 March is on the cusp of Pisces and Aries" in block
    assert re.search(r'type="radio" name="sign" value="pisces"', block)
    assert re.search(r'type="radio" name="sign" value="aries"', block)
    assert 'value="leo"' not in block  # only the two possible signs

    response = reader_client.post(URL, valid(birth_date="1990-03-20", sign="aries"))
    assert response.status_code == 302
    assert Subscription.objects.get(user=reader).sign == "aries"


def test_neither_sign_nor_birth_date_asks_for_one(reader_client):
    response = reader_client.post(URL, valid(birth_date=""))
    assert "Choose your sign, or give your birth date" in field_block(response.content.decode(), "sign")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Mars/Olympus_Mons", "We do not know that time zone"),
        ("time_zone", "", "Choose your time zone."),
        ("delivery_time", "25:61", "Enter a time as HH:MM"),
        ("birth_date", "1990-02-30", "Enter a date as YYYY-MM-DD"),
        ("birth_date", "2999-01-01", "cannot be in the future"),
        ("birth_date", "1850-01-01", "from 1900 on"),
        ("birth_place", "Paris\x00", "Null characters are not allowed."),
        ("birth_place", "x" * 201, "at most 200 characters"),
        ("topics", [], "Pick at least one topic."),
        ("topics", ["astrology"], "Pick topics from the list."),
        ("sign", "ophiuchus", "Choose one of the twelve signs."),
    ],
)
def test_invalid_values_are_reported_next_to_their_field(reader_client, reader, field, value, message):
    response = reader_client.post(URL, valid(**{field: value}))
    assert response.status_code == 200
    assert message in field_block(response.content.decode(), field)
    assert not Subscription.objects.filter(user=reader).exists()


def test_changing_preferences_updates_the_subscription(reader_client, subscription):
    page = reader_client.get(URL).content.decode()
    assert "data-timezone-suggest" not in page  # an existing zone is never overwritten by the script
    response = reader_client.post(
        URL,
        valid(
            sign="",
            birth_date="1984-11-30",
            birth_time="14:05",
            birth_place="Lyon, France",
            time_zone="America/New_York",
            delivery_time="07:45:30",
            topics=["health"],
        ),
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.sign, subscription.birth_date, subscription.birth_time) == (
        "sagittarius",
        date(1984, 11, 30),
        time(14, 5),
    )
    assert (subscription.birth_place, subscription.time_zone) == ("Lyon, France", "America/New_York")
    assert subscription.delivery_time == time(7, 45)  # whole minutes
    assert subscription.topics == ["health"]


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
huge = st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=5), st.integers(1000, 20000))
hostile = st.one_of(
    text,
    huge,
    st.sampled_from(["\x00", "<script>alert(1)</script>", "' OR 1=1 --", "\u202e", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "-1", "9" * 50]),
)
zones = st.one_of(st.sampled_from(sorted(known_time_zones())), hostile)
times = st.one_of(st.times().map(lambda t: t.isoformat()), hostile)
dates = st.one_of(st.dates().map(lambda d: d.isoformat()), hostile)
topic_lists = st.lists(st.one_of(st.sampled_from(["love", "career", "money", "health", "growth"]), hostile), max_size=6)


@given(
    sign=st.one_of(st.sampled_from(["", "leo", "aries"]), hostile),
    birth_date=dates,
    birth_time=times,
    birth_place=hostile,
    time_zone=zones,
    delivery_time=times,
    topics=topic_lists,
)
@settings(max_examples=300, deadline=None)
def test_the_form_never_raises_and_keeps_errors_on_fields(
    sign, birth_date, birth_time, birth_place, time_zone, delivery_time, topics
):
    form = PreferencesForm(
        data={
            "sign": sign,
            "birth_date": birth_date,
            "birth_time": birth_time,
            "birth_place": birth_place,
            "time_zone": time_zone,
            "delivery_time": delivery_time,
            "topics": topics,
        }
    )
    if form.is_valid():
        assert form.cleaned_data["time_zone"] in known_time_zones()
        assert form.cleaned_data["sign"]
    else:
        assert set(form.errors) <= set(FIELDS)


@given(
    sign=st.one_of(st.sampled_from(["", "virgo"]), hostile),
    birth_date=dates,
    birth_time=times,
    birth_place=hostile,
    time_zone=zones,
    delivery_time=times,
    topics=topic_lists,
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_preferences_page_never_answers_500(
    reader_client, sign, birth_date, birth_time, birth_place, time_zone, delivery_time, topics
):
    data = {
        "sign": sign,
        "birth_date": birth_date,
        "birth_time": birth_time,
        "birth_place": birth_place,
        "time_zone": time_zone,
        "delivery_time": delivery_time,
        "topics": topics,
    }
    response = reader_client.post(URL, data)
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        html = response.content.decode()
        form = response.context["form"]
        assert form.errors and set(form.errors) <= set(FIELDS)
        for name in form.errors:
            assert 'class="errorlist' in field_block(html, name)
        assert "<script>alert(1)</script>" not in html


@given(
    sign=st.one_of(st.sampled_from(["", "libra"]), hostile),
    birth_date=dates,
    time_zone=zones,
    delivery_time=times,
    email=hostile,
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_sign_up_page_never_answers_500(client, sign, birth_date, time_zone, delivery_time, email):
    data = {
        "email": email,
        "password1": "12345678",
        "sign": sign,
        "birth_date": birth_date,
        "time_zone": time_zone,
        "delivery_time": delivery_time,
    }
    cache.clear()  # sign-ups are rate limited per IP; this test is about input, not about the limit
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 200  # an all-digit password is refused, so it always comes back with errors
    html = response.content.decode()
    for name in response.context["form"].errors:
        assert re.search(rf"field-{name} has-error", html), name
