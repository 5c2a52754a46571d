"""The send benchmark's sides send what they say they send (benchmarks/bench_send.py).

The limit must send the product's own requests for the same readers, and the documented naive
loop the product's email: otherwise the ratios between them would compare unlike things.
"""

import re
from datetime import UTC, date, datetime

import pytest
from django.core.mail import get_connection

from benchmarks.send_limit import read_payloads, write_payloads
from benchmarks.send_naive import honest_email
from benchmarks.support import message_id_bytes
from devtools.ses_sink import SesSink
from forecasts.sending.dispatch import deliveries_dispatch_due
from forecasts.sending.emails.reader import DailyEmailRenderer
from forecasts.sending.send import deliveries_send
from forecasts.tests.factories import ForecastFactory, add_readers

pytestmark = pytest.mark.django_db

DAY = date(2025, 3, 9)
START = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
NOON = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
# Two renderings of one email differ only in these values: the Date, the Message-ID (a clock, a
# process id, a random number) and the unsubscribe token (signed with the time, in seconds).
PER_RENDERING_RE = re.compile(rb"^(Message-ID|Date): [^\r\n]*|(/unsubscribe/)[A-Za-z0-9_:-]+", re.MULTILINE)


@pytest.fixture
def sink(settings):
    with SesSink(max_send_rate=1000) as sink:
        settings.EMAIL_BACKEND = "django_ses.SESBackend"
        settings.AWS_SES_REGION_ENDPOINT_URL = sink.endpoint_url
        settings.SES_MAX_SEND_RATE = 1000
        settings.REDIS_URL = ""
        settings.SEND_RATE_LIMITER = "forecasts.sending.rate_stores.DatabaseRateLimiter"
        yield sink


def _masked(raw: bytes) -> bytes:
    return PER_RENDERING_RE.sub(lambda found: found.group(1) or found.group(2), raw)


def _readers() -> None:
    ForecastFactory(date=DAY, sign="leo")
    add_readers(2, scheduled_from=START, topics=["love", "money"])
    add_readers(2, scheduled_from=START, time_zone="America/New_York")


def test_the_limit_sends_the_requests_the_product_sends_for_the_same_deliveries(sink, tmp_path):
    _readers()
    ids = deliveries_dispatch_due(NOON, enqueue=False).delivery_ids
    path = tmp_path / "requests.bin"

    totals = write_payloads(sorted(ids), path)
    requests = read_payloads(path, 1, 0)
    assert deliveries_send(ids).sent == 4

    sent = {message.to[0]: message for message in sink.messages}
    assert sorted(request["Destination"]["ToAddresses"][0] for request in requests) == sorted(sent)
    for request in requests:
        (to,) = request["Destination"]["ToAddresses"]
        raw = request["Content"]["Raw"]["Data"]
        assert _masked(raw) == _masked(sent[to].raw)
        assert request["FromEmailAddress"] == sent[to].from_address
    raws = [request["Content"]["Raw"]["Data"] for request in requests]
    assert totals == {
        "emails": 4,
        "bytes": sum(map(len, raws)),
        "message_id_bytes": sum(map(message_id_bytes, raws)),
    }
    assert all(0 < message_id_bytes(raw) < 100 for raw in raws)


def test_the_limits_processes_share_the_requests_between_them(sink, tmp_path):
    _readers()
    ids = deliveries_dispatch_due(NOON, enqueue=False).delivery_ids
    path = tmp_path / "requests.bin"
    write_payloads(sorted(ids), path)

    whole = read_payloads(path, 1, 0)
    shares = [read_payloads(path, 2, index) for index in (0, 1)]

    assert [len(share) for share in shares] == [2, 2]
    assert sorted(map(repr, shares[0] + shares[1])) == sorted(map(repr, whole))


def _words(text: str) -> list[str]:
    return text.split()


def test_the_documented_naive_loop_sends_the_products_email():
    forecast = ForecastFactory(date=DAY, sign="leo")
    connection = get_connection("django.core.mail.backends.locmem.EmailBackend")
    for time_zone, topics in (("Europe/Paris", ["love", "money"]), ("Asia/Tokyo", None)):
        (subscription,) = add_readers(1, scheduled_from=START, time_zone=time_zone, topics=topics)

        product = DailyEmailRenderer().message(subscription, forecast)
        naive = honest_email(subscription, forecast, connection)

        assert naive.subject == product.subject
        assert naive.to == product.to
        # The product collapses blank lines and wraps long HTML lines: the same words either way.
        assert _words(naive.body) == _words(product.body)
        assert _words(naive.alternatives[0][0]) == _words(product.alternatives[0][0])
        for header in ("List-Unsubscribe", "List-Unsubscribe-Post"):
            assert naive.extra_headers[header] == product.extra_headers[header]
