"""The embedded email backend writes messages a person can open, and /outbox/ shows them."""

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection

from forecasts.sending.outbox import OutboxEmailBackend, outbox_messages, read_message


def send_sample(outbox_dir, subject="Your Tuesday sky", html="<p><strong>Venus</strong> smiles</p>"):
    message = EmailMultiAlternatives(subject, "Plain words for you", "from@example.test", ["reader@example.test"])
    message.attach_alternative(html, "text/html")
    connection = get_connection("forecasts.sending.outbox.OutboxEmailBackend", outbox_dir=outbox_dir)
    return connection.send_messages([message])


@pytest.mark.django_db
def test_each_message_becomes_a_readable_eml_file(tmp_path):
    assert send_sample(tmp_path) == 1
    [path] = outbox_messages(tmp_path)
    assert path.suffix == ".eml"
    message = read_message(path)
    assert message["Subject"] == "Your Tuesday sky"
    assert message["To"] == "reader@example.test"
    assert message.get_body(preferencelist=("plain",)).get_content().strip() == "Plain words for you"
    assert "<strong>Venus</strong>" in message.get_body(preferencelist=("html",)).get_content()


@pytest.mark.django_db
def test_the_outbox_records_what_it_accepted_as_ses_records_a_send_event(tmp_path):
    from forecasts.models import SesEvent

    message = EmailMultiAlternatives("s", "b", "from@example.test", ["reader@example.test"])
    assert OutboxEmailBackend(outbox_dir=tmp_path).send_messages([message]) == 1
    [path] = outbox_messages(tmp_path)
    # The message id is the file's name, given back on the message where django-ses puts SES's.
    assert message.extra_headers["message_id"] == path.stem
    [record] = SesEvent.objects.all()
    assert (record.event_type, record.ses_message_id, record.recipients) == ("Send", path.stem, ["reader@example.test"])
    assert record.delivery is None  # no X-Horoscope-Delivery header: not a daily email


def test_messages_without_recipients_are_not_written(tmp_path):
    backend = OutboxEmailBackend(outbox_dir=tmp_path)
    assert backend.send_messages([EmailMultiAlternatives("s", "b", "from@example.test", [])]) == 0
    assert outbox_messages(tmp_path) == []


@pytest.fixture
def outbox_site(settings, tmp_path):
    settings.EMAIL_OUTBOX_DIR = tmp_path
    settings.EMAIL_BACKEND = "forecasts.sending.outbox.OutboxEmailBackend"
    settings.DEBUG = True
    return tmp_path


@pytest.mark.django_db
def test_outbox_pages_list_and_show_a_message(client, outbox_site):
    send_sample(outbox_site, subject="Mars <script>alert(1)</script>")
    listing = client.get("/outbox/")
    assert listing.status_code == 200
    assert "Mars &lt;script&gt;" in listing.content.decode()
    [path] = outbox_messages(outbox_site)
    detail = client.get(f"/outbox/{path.name}/")
    assert detail.status_code == 200
    assert "Plain words for you" in detail.content.decode()
    html = client.get(f"/outbox/{path.name}/html")
    assert html.status_code == 200
    assert "sandbox" in html["Content-Security-Policy"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["../../etc/passwd", "nope.eml", "20250101T000000Z-zzzzzzzz.eml"])
def test_outbox_refuses_unknown_or_traversing_names(client, outbox_site, name):
    assert client.get(f"/outbox/{name}/").status_code == 404


@pytest.mark.django_db
def test_outbox_is_staff_only_without_debug(client, outbox_site, settings):
    settings.DEBUG = False
    response = client.get("/outbox/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_outbox_is_not_served_when_mail_goes_elsewhere(client, outbox_site, settings):
    settings.EMAIL_BACKEND = "django_ses.SESBackend"
    assert client.get("/outbox/").status_code == 404


@pytest.mark.django_db
def test_a_message_left_half_filed_by_a_killed_process_is_filed_if_recorded_and_dropped_if_not(tmp_path):
    import os
    import time

    from forecasts.sending.outbox import ABANDONED_AFTER_S, outbox_deliver_accepted
    from forecasts.sending.send_records import send_record_outbox

    # What a process killed after recording one message, and before recording another, left behind.
    recorded, unrecorded = tmp_path / ".20250309T060000000000Z-aaaaaaaa.eml.part", tmp_path / ".x-bbbbbbbb.eml.part"
    for path in (recorded, unrecorded):
        path.write_bytes(b"To: reader@example.test\r\nSubject: s\r\n\r\nb\r\n")
    from django.utils import timezone

    send_record_outbox("20250309T060000000000Z-aaaaaaaa", {}, ["reader@example.test"], timezone.now())
    assert outbox_deliver_accepted(tmp_path) == (0, 0)  # young: perhaps a sender still at work
    old = time.time() - ABANDONED_AFTER_S - 1
    for path in (recorded, unrecorded):
        os.utime(path, (old, old))

    assert outbox_deliver_accepted(tmp_path) == (1, 1)
    assert [p.name for p in outbox_messages(tmp_path)] == ["20250309T060000000000Z-aaaaaaaa.eml"]
    assert list(tmp_path.glob(".*")) == []
