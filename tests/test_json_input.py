"""Pathological JSON against every place the site reads JSON someone else sent.

The places: the SNS webhook (/ses/events/: its body, and the SES event inside a genuinely signed
message), the JSON fields of the admin's forms (subscription topics, knowledge passages, Celery
beat's task arguments and headers), and, as JSON-only views that must refuse a body, the API and
one-click unsubscribe. A guard below keeps that list complete: any new json.loads in app code
fails it until it goes through horoscope_site/json_input.py or is listed here as trusted.

Bad input is always answered with a 4xx and a reason (or, in a form, an error next to the field);
never a 500, and never a RecursionError.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from django.test import Client
from django_celery_beat.models import IntervalSchedule
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.tests.factories import SubscriptionFactory, UserFactory
from forecasts.models import Passage, SesEvent
from forecasts.sending import ses_events
from horoscope_site.json_input import MAX_DEPTH, JsonInputError, json_input_loads
from tests.support.sns import CERT_PATH, TOPIC, SnsSigner, sns_certificate_host, trust_test_sns

ROOT = Path(__file__).resolve().parent.parent
HYPOTHESIS = hsettings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Pathological JSON, as raw bytes ---


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)  # alternating


deep = st.builds(nested, st.integers(MAX_DEPTH + 1, 20_000), st.sampled_from(["list", "object", "mixed"]))
huge_number = st.one_of(
    st.builds(lambda n: "1" * n, st.integers(21, 6000)),  # past 2**63, and past Python's 4300 digits
    st.sampled_from(["1e999", "-1e999", "1E400", "-" + "9" * 30, "1" + "0" * 400 + ".5e99999"]),
)
constant = st.sampled_from(["NaN", "Infinity", "-Infinity"])
lone_surrogate = st.sampled_from(['"\\ud800"', '"\\udfff"', '"a\\ud83dz"', '"\\udc00\\ud800"'])
nul_text = st.just('"\\u0000"')
long_text = st.builds(lambda n: json.dumps("☉" * n), st.integers(50_000, 120_000))
wrong_top_level = st.sampled_from(["[]", '"text"', "1", "null", "true", "[1, 2]", '""'])


@st.composite
def duplicate_keys(draw) -> str:
    key = draw(st.sampled_from(["Type", "Message", "TopicArn", "a"]))
    return f'{{"{key}": "Notification", "{key}": "Notification"}}'


@st.composite
def invalid_utf8(draw) -> bytes:
    head = draw(st.sampled_from([b'{"Type": "', b'["', b'"']))
    bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]))
    return head + bad + b'"' + (b"}" if head.startswith(b"{") else b"]" if head.startswith(b"[") else b"")


# Refused by the reader wherever they appear; a long string is JSON, refused by the webhook's size limit.
malformed = st.one_of(deep, huge_number, constant, lone_surrogate, nul_text, duplicate_keys())
bad_values = st.one_of(malformed, long_text)


@st.composite
def in_an_envelope(draw, value) -> str:
    """`value` put where a field of an SNS-shaped object would be."""
    field = draw(st.sampled_from(["Message", "Type", "Signature", "TopicArn", "Subject", "Extra"]))
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Message": "{}",
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "c2lnbmF0dXJl",
        "SigningCertURL": "https://127.0.0.1:1" + CERT_PATH,
    }
    envelope[field] = "@@"
    return json.dumps(envelope).replace('"@@"', draw(value), 1)


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


malformed_json = st.one_of(
    malformed.map(as_bytes),
    in_an_envelope(malformed).map(as_bytes),
    wrong_top_level.map(as_bytes),
    invalid_utf8(),
)
pathological = st.one_of(
    malformed_json,
    long_text.map(as_bytes),
    in_an_envelope(long_text).map(as_bytes),
    st.binary(max_size=200),
)


# --- The reader itself ---


@given(malformed_json)
@HYPOTHESIS
def test_the_reader_refuses_every_pathological_shape_with_a_reason(body):
    with pytest.raises(JsonInputError) as refused:
        json_input_loads(body, expect=dict)
    assert str(refused.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper"),
        ('{"a": NaN}', "NaN"),
        ('{"a": 1e999}', "too large"),
        ('{"a": ' + "9" * 5000 + "}", "too large"),
        ('{"a": "\\ud800"}', "surrogate"),
        ('{"a": "x\\u0000"}', "NUL"),
        ('{"a": 1, "a": 2}', "repeats a key"),
        ("[]", "expected a JSON object"),
        ('{"a": ', "not valid JSON"),
    ],
)
def test_each_refusal_says_why(text, reason):
    with pytest.raises(JsonInputError, match=reason):
        json_input_loads(text, expect=dict)


def test_ordinary_json_is_read_as_json_reads_it():
    text = '{"a": [1, -2.5, "☉ \\u00e9", null, true, {"b": []}], "deep": ' + "[" * 30 + "]" * 30 + "}"
    assert json_input_loads(text) == json.loads(text)
    assert json_input_loads(b'"\\ud83d\\ude00"') == "😀"  # a surrogate pair is one character
    assert json_input_loads('"[[[[ not nesting, a string"') == "[[[[ not nesting, a string"


# --- The SNS webhook ---


@pytest.fixture(scope="module")
def signer():
    return SnsSigner()


@pytest.fixture(scope="module")
def sns_host(signer):
    with sns_certificate_host(signer) as server:
        yield server


@pytest.fixture
def trusted_sns(settings, sns_host):
    trust_test_sns(settings, sns_host)
    ses_events.clear_certificate_cache()
    yield
    ses_events.clear_certificate_cache()


def assert_refused_with_a_reason(response, where: str) -> None:
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code}"
    text = response.content.decode(errors="replace")
    assert text.startswith("rejected: ") and len(text) > len("rejected: "), f"{where}: no reason in {text[:200]!r}"


@pytest.mark.django_db
def test_deeply_nested_json_to_the_webhook_is_a_400_with_a_reason(trusted_sns):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/ses/events/", data=nested(100_000, "list"), content_type="text/plain")
    assert response.status_code == 400
    assert response.content.decode() == f"rejected: body is not acceptable JSON: nested deeper than {MAX_DEPTH} levels"


@pytest.mark.django_db
def test_every_pathological_body_to_the_webhook_is_a_4xx_with_a_reason(trusted_sns):
    client = Client(enforce_csrf_checks=True)

    @given(pathological)
    @HYPOTHESIS
    def run(body):
        for content_type in ("text/plain; charset=utf-8", "application/json"):
            response = client.post("/ses/events/", data=body, content_type=content_type)
            assert_refused_with_a_reason(response, f"{body[:80]!r} as {content_type}")
        assert not SesEvent.objects.exists()

    run()


@pytest.mark.django_db
def test_a_signed_message_carrying_pathological_json_is_logged_and_ignored(trusted_sns, signer, sns_host):
    # SNS vouches for the envelope, not for what is inside: a bad event changes nothing and is no 500.
    client = Client(enforce_csrf_checks=True)
    cert_url = sns_host.url(CERT_PATH)

    @given(st.one_of(bad_values, wrong_top_level))
    @hsettings(HYPOTHESIS, max_examples=25)
    def run(message):
        envelope = signer.notification(message, topic_arn=TOPIC, cert_url=cert_url)
        response = client.post("/ses/events/", data=json.dumps(envelope), content_type="text/plain")
        assert response.status_code < 500
        if response.status_code == 200:
            event = SesEvent.objects.get(sns_message_id=envelope["MessageId"])
            assert event.delivery is None
            assert response.content.decode() in {"ignored: not an SES event", "ignored an unknown event"}
        else:  # the envelope's own Message string broke a rule (a lone surrogate, a NUL)
            assert_refused_with_a_reason(response, repr(message[:80]))

    run()


# --- JSON-only views that take no body ---


@pytest.mark.django_db
def test_the_api_and_one_click_unsubscribe_refuse_a_pathological_body_with_a_reason():
    client = Client(enforce_csrf_checks=True)

    @given(pathological)
    @hsettings(HYPOTHESIS, max_examples=20)
    def run(body):
        for url in ("/api/v1/horoscope/today", "/api/v1/signs/leo/today", "/api/v1/nothing-here"):
            response = client.post(url, data=body, content_type="application/json")
            assert response.status_code == 405, url
            assert response.json()["detail"]
        response = client.post("/unsubscribe/not-a-token/", data=body, content_type="application/json")
        assert response.status_code == 400
        assert "link" in response.content.decode().lower()

    run()


# --- The admin's JSON fields ---


@pytest.fixture
def staff(db, settings) -> Client:
    settings.ADMIN_REQUIRE_MFA = False  # the second factor is tested elsewhere; here, the forms
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def admin_json_forms(staff: Client) -> list[tuple[str, dict, str]]:
    """(url, a valid form, the JSON field to spoil) for every admin form with a JSON field."""
    subscription = SubscriptionFactory()
    subscription_form = {
        "user": subscription.user_id,
        "sign": subscription.sign,
        "time_zone": subscription.time_zone,
        "delivery_time": "06:00",
        "topics": '["love"]',
        "transient_bounce_count": "0",
    }
    passage_form = {"key": f"p-{uuid.uuid4().hex[:8]}", "kind": Passage._meta.get_field("kind").choices[0][0]}
    passage_form |= {"topics": '["love"]', "title": "A title", "text": "Some text."}
    task_form = {
        "name": f"t-{uuid.uuid4().hex[:8]}",
        "regtask": "forecasts.tasks.forecasts_prepare_task",
        "interval": IntervalSchedule.objects.create(every=1, period=IntervalSchedule.DAYS).pk,
        "enabled": "on",
        "args": "[]",
        "kwargs": "{}",
        "headers": "{}",
    }
    forms = [
        (f"/admin/accounts/subscription/{subscription.pk}/change/", subscription_form, "topics"),
        ("/admin/forecasts/passage/add/", passage_form, "topics"),
    ]
    forms += [
        ("/admin/django_celery_beat/periodictask/add/", task_form, name) for name in ("args", "kwargs", "headers")
    ]
    for url, data, _name in forms:  # each form, as given, is accepted: the spoilt field is what a test changes
        fresh = {**data, "key": f"p-{uuid.uuid4().hex[:8]}", "name": f"t-{uuid.uuid4().hex[:8]}"}
        response = staff.post(url, fresh)
        assert response.status_code == 302, (url, response.context and response.context["adminform"].form.errors)
    return forms


def test_every_admin_json_field_answers_pathological_json_with_a_form_error(staff):
    forms = admin_json_forms(staff)

    @given(st.sampled_from(forms), malformed)
    @hsettings(HYPOTHESIS, max_examples=40)
    def run(form, value):
        url, data, name = form
        fresh = {**data, "key": f"p-{uuid.uuid4().hex[:8]}", "name": f"t-{uuid.uuid4().hex[:8]}"}
        response = staff.post(url, {**fresh, name: value})
        assert response.status_code == 200, (url, name, value[:80])
        errors = response.context["adminform"].form.errors
        assert list(errors) == [name] and "Enter valid JSON" in errors[name][0], (url, name, value[:80], errors)

    run()


# --- The list of places above is every place that reads JSON ---

# Modules that call json.loads on text they trust: files in the repository, AWS Secrets Manager.
TRUSTED_JSON_READERS = {
    "horoscope_site/json_input.py",  # the strict reader itself
    "horoscope_site/secrets.py",  # the app's own secret, from Secrets Manager
    "forecasts/writing/knowledge.py",  # the knowledge base shipped in the repository
}


def test_no_app_code_reads_json_outside_the_strict_reader():
    loose = []
    for folder in ("accounts", "forecasts", "horoscope_site"):
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if "/tests/" in relative or "/migrations/" in relative or relative in TRUSTED_JSON_READERS:
                continue
            text = path.read_text()
            if re.search(r"\bjson\.loads?\(|\bforms\.JSONField\(", text):
                loose.append(f"{relative}: json.loads or forms.JSONField")
            if "request.body" in text and "json_input_loads(" not in text:
                loose.append(f"{relative}: reads request.body without json_input_loads")
    assert loose == []
