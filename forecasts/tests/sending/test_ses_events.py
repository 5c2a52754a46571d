"""/ses/events/: SNS messages signed in the test (SignatureVersion 1 and 2), and forged ones."""

import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.models import Subscription
from forecasts.models import Delivery, SesEvent
from forecasts.sending import ses_events
from forecasts.tests.factories import add_readers
from tests.support.sns import CERT_PATH, TOPIC, HttpsFileServer, SnsSigner, sns_certificate_host, trust_test_sns

pytestmark = pytest.mark.django_db

URL = "/ses/events/"


@pytest.fixture(scope="module")
def signer():
    return SnsSigner()


@pytest.fixture(scope="module")
def sns_host(signer):
    with sns_certificate_host(signer) as server:
        yield server


@pytest.fixture(autouse=True)
def trust_the_test_sns(settings, sns_host):
    trust_test_sns(settings, sns_host)
    ses_events.clear_certificate_cache()
    yield
    ses_events.clear_certificate_cache()


@pytest.fixture
def sent():
    """A reader's delivery that SES accepted with message id 'ses-1'."""
    (subscription,) = add_readers(scheduled_from=datetime(2025, 3, 9, tzinfo=UTC))
    delivery = Delivery.objects.create(
        subscription=subscription,
        local_date="2025-03-09",
        due_at=datetime(2025, 3, 9, 5, tzinfo=UTC),
        status=Delivery.Status.SENT,
        ses_message_id="ses-1",
    )
    return delivery


def ses_event(event_type: str, delivery: Delivery, **extra) -> dict:
    email = delivery.subscription.user.email
    body = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2025-03-09T05:00:01.000Z",
            "messageId": delivery.ses_message_id,
            "source": "horoscope@example.test",
            "destination": [email],
            "headers": [{"name": "X-Horoscope-Delivery", "value": str(delivery.pk)}],
        },
    }
    if event_type == "Bounce":
        body["bounce"] = {
            "bounceType": extra.get("bounce_type", "Permanent"),
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": email, "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2025-03-09T05:00:03.000Z",
        }
    elif event_type == "Complaint":
        body["complaint"] = {"complainedRecipients": [{"emailAddress": email}], "complaintFeedbackType": "abuse"}
    elif event_type == "Delivery":
        body["delivery"] = {"timestamp": "2025-03-09T05:00:02.000Z", "recipients": [email]}
    return body


def post(client: Client, message: dict | str | bytes, **headers):
    data = message if isinstance(message, str | bytes) else json.dumps(message)
    return client.post(URL, data=data, content_type="text/plain; charset=UTF-8", **headers)


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)  # SNS sends no CSRF token


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_permanent_bounce_suppresses_the_reader(client, signer, sns_host, sent, version):
    message = signer.notification(
        ses_event("Bounce", sent), topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH), version=version
    )
    response = post(client, message, HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification")

    assert response.status_code == 200, response.content
    subscription = Subscription.objects.get(pk=sent.subscription_id)
    assert subscription.status == Subscription.Status.SUPPRESSED
    assert "Permanent bounce" in subscription.status_reason
    assert subscription.next_send_at is None
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.BOUNCED
    event = SesEvent.objects.get()
    assert (event.event_type, event.delivery_id, event.bounce_type) == ("Bounce", sent.pk, "Permanent")


def test_a_complaint_suppresses_the_reader(client, signer, sns_host, sent):
    message = signer.notification(ses_event("Complaint", sent), topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH))
    assert post(client, message).status_code == 200
    assert Subscription.objects.get(pk=sent.subscription_id).status == Subscription.Status.SUPPRESSED
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.COMPLAINED


def test_a_transient_bounce_is_counted_once_even_when_sns_repeats_it(client, signer, sns_host, sent):
    message = signer.notification(
        ses_event("Bounce", sent, bounce_type="Transient"), topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH)
    )
    assert post(client, message).status_code == 200
    repeat = post(client, message)
    assert repeat.status_code == 200 and b"duplicate" in repeat.content
    subscription = Subscription.objects.get(pk=sent.subscription_id)
    assert (subscription.status, subscription.transient_bounce_count) == (Subscription.Status.ACTIVE, 1)
    assert SesEvent.objects.count() == 1


def test_a_delivery_event_marks_the_delivery_delivered(client, signer, sns_host, sent):
    message = signer.notification(
        ses_event("Delivery", sent), topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH), version="2"
    )
    assert post(client, message).status_code == 200
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.DELIVERED
    assert sent.delivered_at == datetime(2025, 3, 9, 5, 0, 2, tzinfo=UTC)


def test_an_event_can_arrive_before_the_send_was_recorded(client, signer, sns_host, sent):
    """The worker records message ids in bulk: the event finds its delivery by our header meanwhile."""
    Delivery.objects.filter(pk=sent.pk).update(status=Delivery.Status.SENDING, ses_message_id="")
    event = ses_event("Delivery", sent)
    event["mail"]["messageId"] = "ses-not-yet-recorded"
    message = signer.notification(event, topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH))
    assert post(client, message).status_code == 200
    sent.refresh_from_db()
    assert (sent.status, sent.ses_message_id) == (Delivery.Status.DELIVERED, "ses-not-yet-recorded")


def test_the_certificate_is_fetched_once(client, signer, sns_host, sent):
    before = sns_host.requests.count(CERT_PATH)
    for _ in range(3):
        message = signer.notification(ses_event("Delivery", sent), topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH))
        assert post(client, message).status_code == 200
    assert sns_host.requests.count(CERT_PATH) - before == 1


def test_the_certificate_fetch_never_follows_a_redirect(client, signer, sns_host, sent):
    # The redirect leads to a genuine certificate on the same trusted host: following it would
    # verify the signature. A redirect can lead anywhere, so the fetch stops at the 302.
    target = "/SimpleNotificationService-redirectedtarget0000000000000000.pem"
    sns_host.serve(target, signer.certificate_pem)
    moved = "/SimpleNotificationService-movedaway000000000000000000000000.pem"
    cert_url = sns_host.redirect(moved, sns_host.url(target))
    message = signer.notification(ses_event("Delivery", sent), topic_arn=TOPIC, cert_url=cert_url)

    response = post(client, message)

    assert response.status_code == 400
    assert b"signing certificate unavailable" in response.content
    assert moved in sns_host.requests and target not in sns_host.requests
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT
    with pytest.raises(OSError, match="302"):
        ses_events.sns_fetch(cert_url)
    assert target not in sns_host.requests


def test_a_subscription_confirmation_from_a_trusted_topic_is_confirmed(client, signer, sns_host):
    subscribe = sns_host.serve("/", b"<ConfirmSubscriptionResponse/>")
    message = signer.subscription_confirmation(
        topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH), subscribe_url=subscribe + "?Action=ConfirmSubscription"
    )
    response = post(client, message, HTTP_X_AMZ_SNS_MESSAGE_TYPE="SubscriptionConfirmation")
    assert response.status_code == 200
    assert "/?Action=ConfirmSubscription" in sns_host.requests


def test_a_subscription_confirmation_to_an_untrusted_url_is_not_followed(client, signer, sns_host):
    message = signer.subscription_confirmation(
        topic_arn=TOPIC, cert_url=sns_host.url(CERT_PATH), subscribe_url="https://attacker.example/?confirm"
    )
    response = post(client, message)
    assert response.status_code == 400
    assert b"SubscribeURL" in response.content


def forged_cases(signer: SnsSigner, sns_host: HttpsFileServer, sent: Delivery) -> dict:
    cert_url = sns_host.url(CERT_PATH)
    good = signer.notification(ses_event("Bounce", sent), topic_arn=TOPIC, cert_url=cert_url)
    other_key = SnsSigner()
    untrusted_topic = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"
    tampered = {**good, "Message": json.dumps(ses_event("Complaint", sent))}
    missing = dict(good)
    del missing["MessageId"]
    return {
        "bad signature": tampered,
        "signed with another key": other_key.notification(
            ses_event("Bounce", sent), topic_arn=TOPIC, cert_url=cert_url
        ),
        "untrusted certificate host": signer.notification(
            ses_event("Bounce", sent), topic_arn=TOPIC, cert_url=f"https://localhost:1{CERT_PATH}"
        ),
        "certificate over http": signer.notification(
            ses_event("Bounce", sent), topic_arn=TOPIC, cert_url=cert_url.replace("https://", "http://")
        ),
        "not a certificate path": signer.notification(
            ses_event("Bounce", sent), topic_arn=TOPIC, cert_url=sns_host.url("/files/anything.pem")
        ),
        "untrusted topic": signer.notification(ses_event("Bounce", sent), topic_arn=untrusted_topic, cert_url=cert_url),
        "unknown signature version": {**good, "SignatureVersion": "3"},
        "signature not base64": {**good, "Signature": "%%%"},
        "missing fields": missing,
        "malformed JSON": '{"Type": "Notification", ',
        "not an object": "[1, 2, 3]",
        "unknown type": {**good, "Type": "Surprise"},
        "header and body disagree": ("header", good),
    }


def test_forged_or_malformed_posts_answer_400_and_change_nothing(client, signer, sns_host, sent):
    for name, case in forged_cases(signer, sns_host, sent).items():
        headers = {}
        if isinstance(case, tuple):
            headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "SubscriptionConfirmation"}
            case = case[1]
        response = post(client, case, **headers)
        assert response.status_code == 400, name
        assert response.content.startswith(b"rejected: "), name
    assert Subscription.objects.get(pk=sent.subscription_id).status == Subscription.Status.ACTIVE
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT
    assert SesEvent.objects.count() == 0


def test_an_expired_signing_certificate_is_refused(client, sns_host, sent):
    expired = SnsSigner(expired=True)
    path = "/SimpleNotificationService-expired0000.pem"
    sns_host.serve(path, expired.certificate_pem)
    message = expired.notification(ses_event("Bounce", sent), topic_arn=TOPIC, cert_url=sns_host.url(path))
    response = post(client, message)
    assert response.status_code == 400 and b"not valid now" in response.content
    assert Subscription.objects.get(pk=sent.subscription_id).status == Subscription.Status.ACTIVE


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("sns.us-east-1.amazonaws.com", True),
        ("sns.cn-north-1.amazonaws.com.cn", True),
        ("SNS.eu-west-1.AMAZONAWS.com", True),
        ("bucket.s3.amazonaws.com", False),
        ("sns.evil.s3.amazonaws.com", False),
        ("sns.us-east-1.amazonaws.com.attacker.example", False),
        ("amazonaws.com", False),
    ],
)
def test_only_sns_hosts_are_trusted_by_default(settings, host, trusted):
    settings.AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS = ["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"]
    assert ses_events.host_is_trusted(host) is trusted
