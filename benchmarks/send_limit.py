"""The send's limit: raw boto3 SESv2 `send_email` loops, one reused client each, sending the
product's own emails to the same readers, started together in as many processes as asked.

    payload = write_payloads(delivery_ids, path)   # each delivery's SES request, made by the product
    result = run_limit(path, processes=2, sink=sink)

Each delivery's request (sender, recipient, raw bytes) is made before any timer by the code the
send path runs: the product's renderer (`DailyEmailRenderer` with the per-process parts cache,
as `deliveries_send` uses it) and django-ses's own parameters for `send_email`. So the limit
sends exactly what the product would, and does nothing else: each process reads its share of
the requests into memory, makes its client and sends one warm-up email, then waits at the
barrier; all are released at once and the run is timed from the release to the last one done.
"""

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

# A request on disk: the lengths of its JSON parameters and of its raw email, then both.
RECORD = struct.Struct("<II")
PAYLOAD_CHUNK = 1000


def write_payloads(delivery_ids: list[int], path: Path) -> dict:
    """Write each delivery's SES `send_email` parameters, as the product makes them, to `path`.

    Returns the count, the raw emails' total bytes and their Message-IDs' total bytes.
    """
    from django.core.mail import get_connection
    from django_ses.conf import settings as ses_settings

    from benchmarks.support import message_id_bytes
    from forecasts.models import Delivery
    from forecasts.sending.emails.cache import send_parts_cache
    from forecasts.sending.emails.reader import DailyEmailRenderer
    from forecasts.sending.send import forecasts_for

    connection = get_connection()
    if not hasattr(connection, "_get_send_email_parameters"):
        raise RuntimeError(f"the limit needs django-ses's backend, not {type(connection).__name__}")
    renderer = DailyEmailRenderer(cache=send_parts_cache)
    totals = {"emails": 0, "bytes": 0, "message_id_bytes": 0}
    with path.open("wb") as out:
        for start in range(0, len(delivery_ids), PAYLOAD_CHUNK):
            chunk = delivery_ids[start : start + PAYLOAD_CHUNK]
            deliveries = list(Delivery.objects.select_related("subscription__user").filter(id__in=chunk).order_by("id"))
            forecasts = forecasts_for({(d.local_date, d.subscription.sign) for d in deliveries})
            for delivery in deliveries:
                forecast = forecasts[(delivery.local_date, delivery.subscription.sign)]
                message = renderer.message(delivery.subscription, forecast, delivery)
                # What django-ses's send_messages passes to boto3 for this message.
                params = connection._get_send_email_parameters(
                    message, ses_settings.AWS_SES_FROM_EMAIL, ses_settings.AWS_SES_RETURN_PATH
                )
                raw = params.pop("Content")["Raw"]["Data"]
                head = json.dumps(params).encode()
                out.write(RECORD.pack(len(head), len(raw)) + head + raw)
                totals["emails"] += 1
                totals["bytes"] += len(raw)
                totals["message_id_bytes"] += message_id_bytes(raw)
    if totals["emails"] != len(delivery_ids):
        raise RuntimeError(f"{len(delivery_ids)} deliveries, {totals['emails']} payloads written")
    return totals


def read_payloads(path: Path, processes: int, index: int) -> list[dict]:
    """The `send_email` keyword arguments of every `processes`-th request from `index` on."""
    requests = []
    with path.open("rb") as source:
        number = 0
        while header := source.read(RECORD.size):
            head_length, raw_length = RECORD.unpack(header)
            head, raw = source.read(head_length), source.read(raw_length)
            if number % processes == index:
                requests.append({**json.loads(head), "Content": {"Raw": {"Data": raw}}})
            number += 1
    return requests


def child_main(argv: list[str]) -> None:
    """One limit process: load its share, make its client, warm up, wait for "go", send, report."""
    import django

    django.setup()
    import boto3
    from django.conf import settings

    path, processes, index = Path(argv[0]), int(argv[1]), int(argv[2])
    requests = read_payloads(path, processes, index)
    client = boto3.session.Session().client(
        "sesv2",
        region_name=settings.AWS_SES_REGION_NAME,
        endpoint_url=settings.AWS_SES_REGION_ENDPOINT_URL,
        config=settings.AWS_SES_CONFIG,
    )
    # The connection made and boto3's first-call work done before the timer (the sink is reset after).
    warm_up = {**requests[0], "Destination": {"ToAddresses": [f"warm-up-{index}@example.test"]}}
    client.send_email(**warm_up)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    began = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    for request in requests:
        client.send_email(**request)
    finished = time.monotonic()
    sent_bytes = sum(len(request["Content"]["Raw"]["Data"]) for request in requests)
    print(json.dumps({"sent": len(requests), "bytes": sent_bytes, "began": began, "finished": finished}), flush=True)


def run_limit(path: Path, processes: int, sink, env: dict[str, str], log_dir: Path) -> dict:
    """`processes` limit processes over the requests in `path`, released together; timed from
    the release to the last one finishing."""
    from benchmarks import support
    from devtools.servers import REPO_ROOT

    children = []
    try:
        for index in range(processes):
            log = (log_dir / f"limit-{processes}-{index}.log").open("w")
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.send_limit", str(path), str(processes), str(index)],
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )
            log.close()
        for index, child in enumerate(children):
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"limit process {index} failed; see {log_dir}/limit-{processes}-{index}.log")
        support.settle()  # as before each product run
        sink.reset()  # the warm-up emails are not counted
        released = time.monotonic()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = []
        for index, child in enumerate(children):
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"limit process {index} failed; see {log_dir}/limit-{processes}-{index}.log")
            reports.append(json.loads(line))
        for child in children:
            child.wait(timeout=60)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    elapsed = max(report["finished"] for report in reports) - released
    sent = sum(report["sent"] for report in reports)
    return {
        "processes": processes,
        "sent": sent,
        "bytes": sum(report["bytes"] for report in reports),
        "seconds": elapsed,
        "per_s": sent / elapsed,
        # How far apart the processes started and ended: a barrier that works starts them within milliseconds.
        "start_spread_s": max(r["began"] for r in reports) - min(r["began"] for r in reports),
        "finish_spread_s": max(r["finished"] for r in reports) - min(r["finished"] for r in reports),
    }


if __name__ == "__main__":
    child_main(sys.argv[1:])
