"""Send throughput, end to end, against the limit and against the naive way, in the same run.

All three send to one local SESv2-compatible sink (devtools/ses_sink.py, in a process of
its own, rate enforcement off):
- the limit: a loop of raw boto3 `sesv2.send_email` calls with one reused client, sending a
  real daily email's bytes (so every variant moves the same payload);
- the product, as it runs: N synthetic readers due now, dispatched, and sent by a real Celery
  worker as the Procfile starts it (`--concurrency=2`: two processes, Redis broker, the shared
  rate limiter in Redis, results written to PostgreSQL), timed from dispatch to the last email
  recorded. The headline ratio is this one;
- the same in one process: `deliveries_dispatch_due` then `deliveries_send` batch by batch in a
  child process (no Celery), whose peak memory is measured; with CPython's GIL one process
  cannot overlap its own CPU with the SES call's, so this is the per-process figure;
- the naive way: for each reader, every template rendered and its CSS inlined again (a fresh
  DailyEmailRenderer, i.e. render_to_string per reader), then `send_mail(...)` through
  django-ses, which opens a new SES connection per email; on a sample (its rate is what matters).

SES_MAX_SEND_RATE is set far above what the sink can take (SEND_RATE_CEILING), so the
shared limiter takes its slot for every email (its cost is measured) but never waits.
BENCH_N readers (default 10,000); BENCH_FULL=1 also sends 100,000 (memory at 10k and 100k).
"""

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

TARGET_VS_LIMIT = 0.75
TARGET_VS_NAIVE = 20.0
MEMORY_FLAT_WITHIN = 0.15
NAIVE_SAMPLE = 500
NAIVE_TIME_LIMIT_S = 45.0
LIMIT_TIME_LIMIT_S = 180.0
SEND_RATE_CEILING = 100_000.0
FULL_N = 100_000


def bench_n() -> int:
    return int(os.environ.get("BENCH_N", "10000"))


def full_run() -> bool:
    return os.environ.get("BENCH_FULL", "") not in ("", "0", "false", "no")


# --- pieces shared by the parent and the child --------------------------------------------------


def sample_email():
    """A real daily email for one seeded reader: (EmailMultiAlternatives, raw bytes as django-ses sends them)."""
    from forecasts.models import Delivery, Forecast
    from forecasts.sending.emails.reader import DailyEmailRenderer

    delivery = Delivery.objects.select_related("subscription__user").order_by("id").first()
    forecast = Forecast.objects.get(date=delivery.local_date, sign=delivery.subscription.sign)
    message = DailyEmailRenderer().message(delivery.subscription, forecast, delivery)
    return message, message.message().as_bytes(linesep="\r\n")


def send_limit(endpoint_url: str, raw: bytes, count: int, time_limit: float) -> dict:
    """The limit: one boto3 SESv2 client, `send_email` in a loop, nothing else."""
    import boto3
    from django.conf import settings

    from benchmarks import support

    support.settle()  # as before each product run

    client = boto3.session.Session().client(
        "sesv2", region_name=settings.AWS_SES_REGION_NAME, endpoint_url=endpoint_url, config=settings.AWS_SES_CONFIG
    )
    sender = settings.DEFAULT_FROM_EMAIL
    client.send_email(FromEmailAddress=sender, Destination={"ToAddresses": ["warm-up@example.test"]},
                      Content={"Raw": {"Data": raw}})  # fmt: skip
    began = time.perf_counter()
    sent = 0
    while sent < count and time.perf_counter() - began < time_limit:
        client.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [f"limit-{sent:07d}@example.test"]},
            Content={"Raw": {"Data": raw}},
        )
        sent += 1
    elapsed = time.perf_counter() - began
    return {"sent": sent, "seconds": elapsed, "per_s": sent / elapsed}


def send_naive(subscriptions, time_limit: float) -> dict:
    """The naive way: every template rendered (and CSS inlined) for every reader, then `send_mail`.

    The email is the product's own, made by a fresh DailyEmailRenderer per reader (so nothing
    rendered is shared between readers); `send_mail` opens a new SES connection for each email.
    """
    from django.conf import settings
    from django.core.mail import send_mail
    from django.utils import timezone

    from accounts.scheduling import local_date_of
    from forecasts.models import Forecast
    from forecasts.sending.emails.reader import DailyEmailRenderer

    began = time.perf_counter()
    sent = 0
    for subscription in subscriptions:
        if time.perf_counter() - began > time_limit:
            break
        day = local_date_of(timezone.now(), subscription.time_zone)
        forecast = Forecast.objects.get(date=day, sign=subscription.sign)
        message = DailyEmailRenderer().message(subscription, forecast)
        send_mail(
            message.subject,
            message.body,
            settings.DEFAULT_FROM_EMAIL,
            [subscription.user.email],
            html_message=message.alternatives[0][0],
        )
        sent += 1
    elapsed = time.perf_counter() - began
    return {"sent": sent, "seconds": elapsed, "per_s": sent / elapsed}


def send_product(batch_size: int) -> dict:
    """Everything due now: dispatch, then `deliveries_send` batch by batch, as a worker runs them."""
    from django.utils import timezone

    from forecasts.sending.dispatch import deliveries_dispatch_due
    from forecasts.sending.send import DeliveriesRetryLater, deliveries_send

    began = time.perf_counter()
    dispatched = deliveries_dispatch_due(timezone.now(), enqueue=False, time_budget=600)
    dispatched_at = time.perf_counter()
    totals: dict[str, int] = {}
    retries = 0
    ids = dispatched.delivery_ids
    for start in range(0, len(ids), batch_size):
        try:
            report = deliveries_send(ids[start : start + batch_size], continue_in_new_task=False)
        except DeliveriesRetryLater:
            retries += 1
            continue
        for key, value in report.as_dict().items():
            totals[key] = totals.get(key, 0) + value
    finished = time.perf_counter()
    return {
        "dispatched": len(ids),
        "dispatch_s": dispatched_at - began,
        "send_s": finished - dispatched_at,
        "seconds": finished - began,
        "per_s": totals.get("sent", 0) / (finished - began),
        "report": totals,
        "retries": retries,
    }


# --- the child: one process sending N, measured for time and peak memory -------------------------


BREAKDOWN_N = 3000


def _time_stages() -> dict[str, float]:
    """Wrap the send path's stages with timers (the breakdown run only); returns the running totals."""
    import botocore.client
    import django_ses
    from django.db.models.query import QuerySet

    import forecasts.sending.delivery_status
    import forecasts.sending.dispatch
    import forecasts.sending.emails.reader
    import forecasts.sending.emails.render
    import forecasts.sending.ratelimit
    import forecasts.sending.send

    totals: dict[str, float] = {}

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[label] = totals.get(label, 0.0) + time.perf_counter() - began

        setattr(owner, name, wrapper)

    timed(botocore.client.BaseClient, "_make_api_call", "boto3_send_email_call")
    timed(django_ses, "get_message_bytes", "mime_bytes_handed_to_django_ses")
    timed(forecasts.sending.emails.reader.DailyEmailRenderer, "message", "render_personalise")
    timed(forecasts.sending.emails.cache, "render_forecast_parts", "render_forecast_once_per_process")
    timed(forecasts.sending.ratelimit.RedisRateLimiter, "acquire", "shared_rate_limiter")
    timed(forecasts.sending.send, "_claim", "claim_queued_to_sending")
    timed(forecasts.sending.delivery_status, "update_rows", "record_results_and_dispatch_updates")
    timed(forecasts.sending.dispatch, "update_rows", "record_results_and_dispatch_updates")
    timed(QuerySet, "_fetch_all", "orm_reads")
    timed(forecasts.sending.send, "deliveries_send", "deliveries_send_total")
    return totals


def _own_memory() -> dict[str, float]:
    """This process's current (VmRSS) and peak (VmHWM) resident memory, in MiB."""
    status = Path("/proc/self/status").read_text()
    return {name: int(status.split(f"{name}:")[1].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


def child_main(argv: list[str]) -> None:
    import django

    django.setup()
    from django.conf import settings

    from forecasts.sending.emails.reader import DailyEmailRenderer  # noqa: F401 - imported before the baseline RSS

    settings.SES_MAX_SEND_RATE = SEND_RATE_CEILING
    if argv[1:2] == ["breakdown"]:
        totals = _time_stages()
        result = send_product(int(argv[0]))
        sent = result["report"].get("sent", 0) or 1
        result["ms_per_email"] = {label: 1000 * seconds / sent for label, seconds in totals.items()}
        print(json.dumps(result))
        return
    before = _own_memory()
    result = send_product(int(argv[0]))
    result["rss_before_send_mib"] = before["VmRSS"]
    # VmHWM, not getrusage's ru_maxrss: the latter keeps the parent's size from before exec().
    result["peak_rss_mib"] = _own_memory()["VmHWM"]
    print(json.dumps(result))


# --- the parent ----------------------------------------------------------------------------------


def _sent_count(prefix: str) -> int:
    from forecasts.models import Delivery

    return Delivery.objects.filter(
        status=Delivery.Status.SENT, subscription__user__email__startswith=prefix + "-"
    ).count()


def _product_in_child(n: int, prefix: str, sink, env_overrides: dict) -> dict:
    from benchmarks import support

    support.seed_subscribers(n, due=n, now=support.utc_now(), prefix=prefix)
    sink.reset()
    support.settle()
    result = support.run_child(
        "benchmarks.bench_send",
        ["child", str(_batch_size())],
        timeout=max(600, n / 20),
        env=support.child_env(**env_overrides),
    )
    stats = sink.stats()
    result["sink_accepted"] = stats["accepted"]
    result["sink_distinct_recipients"] = stats["distinct_recipients"]
    result["sink_errors"] = stats["errors"]
    result["recorded_sent"] = _sent_count(prefix)
    if not result["sink_accepted"] == result["sink_distinct_recipients"] == result["recorded_sent"] == n:
        raise RuntimeError(f"product send of {n} incomplete: {result}")
    return result


def _batch_size() -> int:
    from django.conf import settings

    return settings.SEND_BATCH_SIZE


def _worker_run(n: int, prefix: str, sink, env_overrides: dict) -> dict:
    """The same send through two real Celery worker processes (the shipped --concurrency=2), Redis broker."""
    from benchmarks import support
    from devtools.servers import celery_worker, wait_for
    from forecasts.sending.dispatch import deliveries_dispatch_due

    env = support.environment()
    worker = support.track(
        celery_worker(support.child_env(**env_overrides), env.root / f"worker-{prefix}.log", name=prefix)
    )
    try:
        wait_for(lambda: "ready" in worker.log(), timeout=60, what="the Celery worker")
        support.seed_subscribers(n, due=n, now=support.utc_now(), prefix=prefix)
        sink.reset()
        support.settle()
        began = time.perf_counter()
        deliveries_dispatch_due(support.utc_now(), enqueue=True, time_budget=600)
        deadline = time.monotonic() + max(120, n / 20)
        # Watch the sink (a pipe to its process), not the database, while the workers send: a
        # count over the deliveries every quarter second would take CPU from them. The clock
        # stops once every email is also recorded as sent.
        while sink.stats()["accepted"] < n and time.monotonic() < deadline:
            time.sleep(0.1)
        while _sent_count(prefix) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
        sent = _sent_count(prefix)
        # The prefork pool's children do the sending; their peak resident memory so far.
        peaks = [peak for pid in support.descendants(worker.pid) if (peak := support.peak_rss_mib(pid))]
    finally:
        worker.stop()
    stats = sink.stats()
    return {
        "sent": sent,
        "seconds": elapsed,
        "per_s": sent / elapsed,
        "sink_accepted": stats["accepted"],
        "sink_distinct_recipients": stats["distinct_recipients"],
        "worker_peak_rss_mib": max(peaks) if peaks else None,
    }


def run() -> dict:
    from django.conf import settings

    from benchmarks import support

    n = bench_n()
    support.environment()
    support.use_database("bench_send")
    now = support.utc_now()
    prepare_s = support.prepare_forecasts(support.local_dates_due(now))

    with support.SinkProcess(max_send_rate=SEND_RATE_CEILING, enforce_rate=False) as sink:
        settings.AWS_SES_REGION_ENDPOINT_URL = sink.endpoint_url
        settings.SES_MAX_SEND_RATE = SEND_RATE_CEILING
        overrides = {"AWS_SES_REGION_ENDPOINT_URL": sink.endpoint_url, "SES_MAX_SEND_RATE": str(SEND_RATE_CEILING)}

        # A reader and their real email, for the limit's payload.
        support.seed_subscribers(1, due=1, now=now, prefix="sample")
        from forecasts.sending.dispatch import deliveries_dispatch_due

        deliveries_dispatch_due(now, enqueue=False)
        _, raw = sample_email()

        # The limit and the product take turns, twice each, and each side's faster run counts:
        # load from elsewhere on a shared machine can then flatter neither side's ratio.
        limit_runs = [send_limit(sink.endpoint_url, raw, n, LIMIT_TIME_LIMIT_S)]
        worker_runs = [_worker_run(n, "workers1", sink, overrides)]
        product = _product_in_child(n, "bench", sink, overrides)
        limit_runs.append(send_limit(sink.endpoint_url, raw, n, LIMIT_TIME_LIMIT_S))
        worker_runs.append(_worker_run(n, "workers2", sink, overrides))
        limit = max(limit_runs, key=lambda run: run["per_s"])
        workers = max(worker_runs, key=lambda run: run["per_s"])

        from accounts.models import Subscription

        support.seed_subscribers(NAIVE_SAMPLE, due=0, now=now, prefix="naive")
        naive_readers = Subscription.objects.select_related("user").filter(user__email__startswith="naive-")
        naive_readers.update(next_send_at=now + timedelta(days=2))  # never picked up by a later dispatch
        readers = list(naive_readers.order_by("id"))
        naive = send_naive(readers, NAIVE_TIME_LIMIT_S)

        # Where an email's time goes, from a shorter run with a timer around each stage; one SES
        # call at a time, so the stages add up instead of overlapping.
        support.seed_subscribers(BREAKDOWN_N, due=BREAKDOWN_N, now=support.utc_now(), prefix="breakdown")
        breakdown = support.run_child(
            "benchmarks.bench_send",
            ["child", str(_batch_size()), "breakdown"],
            timeout=600,
            env=support.child_env(**overrides, SEND_CONCURRENCY="1"),
        )

        # Peak memory of the sending process at 10,000 and 100,000 readers (BENCH_FULL=1).
        memory_runs = {n: product}
        if full_run() or n >= FULL_N:
            for count in (10_000, FULL_N):
                if count not in memory_runs:
                    memory_runs[count] = _product_in_child(count, f"memory{count}", sink, overrides)

    support.drop_database("bench_send")
    figures = {
        "subscribers": n,
        "email_bytes": len(raw),
        "send_concurrency": settings.SEND_CONCURRENCY,
        "limit_raw_boto3_per_s": support.rounded(limit["per_s"]),
        "limit_runs_per_s": [support.rounded(run["per_s"]) for run in limit_runs],
        "product_worker_runs_per_s": [support.rounded(run["per_s"]) for run in worker_runs],
        "product_worker_per_s": support.rounded(workers["per_s"]),
        "product_vs_limit": support.rounded(workers["per_s"] / limit["per_s"], 3),
        "product_vs_naive": support.rounded(workers["per_s"] / naive["per_s"], 1),
        "product_worker_processes": 2,
        "product_worker_sent": workers["sent"],
        "naive_send_mail_per_s": support.rounded(naive["per_s"], 2),
        "naive_sample": naive["sent"],
        "one_process_per_s": support.rounded(product["per_s"]),
        "one_process_vs_limit": support.rounded(product["per_s"] / limit["per_s"], 3),
        "one_process_dispatch_s": support.rounded(product["dispatch_s"], 2),
        "one_process_send_s": support.rounded(product["send_s"], 2),
        "worker_peak_rss_mib": support.rounded(workers["worker_peak_rss_mib"] or 0),
        "forecasts_prepare_s": support.rounded(prepare_s, 2),
    }
    figures["breakdown_ms_per_email"] = {
        label: round(value, 3) for label, value in sorted(breakdown["ms_per_email"].items(), key=lambda kv: -kv[1])
    }
    figures["breakdown_limit_ms_per_email"] = round(1000 / limit["per_s"], 3)
    for count, result in sorted(memory_runs.items()):
        figures[f"sender_peak_rss_mib_at_{count}"] = support.rounded(result["peak_rss_mib"])
        figures[f"sender_rss_before_send_mib_at_{count}"] = support.rounded(result["rss_before_send_mib"])
        if count != n:
            figures[f"one_process_per_s_at_{count}"] = support.rounded(result["per_s"])
            figures[f"one_process_vs_limit_at_{count}"] = support.rounded(result["per_s"] / limit["per_s"], 3)
    if 10_000 in memory_runs and FULL_N in memory_runs:
        low, high = memory_runs[10_000]["peak_rss_mib"], memory_runs[FULL_N]["peak_rss_mib"]
        figures["sender_peak_rss_growth_10k_to_100k"] = support.rounded(high / low - 1, 3)
        figures["memory_flat"] = high / low - 1 <= MEMORY_FLAT_WITHIN
    figures["meets_vs_limit"] = workers["per_s"] / limit["per_s"] >= TARGET_VS_LIMIT
    figures["meets_vs_naive"] = workers["per_s"] / naive["per_s"] >= TARGET_VS_NAIVE
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_main(sys.argv[2:])
    else:
        from benchmarks.__main__ import main

        sys.exit(main(["send"]))
