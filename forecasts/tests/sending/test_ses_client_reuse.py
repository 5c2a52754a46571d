"""One boto3 SES client per process and configuration, shared by the send batches."""

from django.core.mail import get_connection

from forecasts.sending.ses import reuse_ses_client


def test_send_batches_share_one_client_per_endpoint_and_other_backends_are_left_alone(settings):
    settings.AWS_SES_REGION_ENDPOINT_URL = "http://127.0.0.1:9/"  # never called: clients connect lazily
    first, second = get_connection("django_ses.SESBackend"), get_connection("django_ses.SESBackend")
    reuse_ses_client(first)
    reuse_ses_client(second)
    assert first.connection is not None and first.connection is second.connection
    second.close()  # django-ses's close() forgets the client; the next batch gets the same one back
    reuse_ses_client(second)
    assert second.connection is first.connection

    settings.AWS_SES_REGION_ENDPOINT_URL = "http://127.0.0.1:10/"
    other = get_connection("django_ses.SESBackend")
    reuse_ses_client(other)
    assert other.connection is not first.connection
    assert other.connection.meta.endpoint_url == "http://127.0.0.1:10/"

    outbox = get_connection("django.core.mail.backends.locmem.EmailBackend")
    reuse_ses_client(outbox)
    assert not hasattr(outbox, "connection")
