"""Send throughput, end to end, against the limit and against the naive way, in the same run.

Every side sends to one local SESv2-compatible sink (devtools/ses_sink.py, in a process of its
own, rate enforcement off), and every side sends the same readers' emails. For each size
(BENCH_N readers, default 10,000; with BENCH_FULL=1 also 100,000) one pool of readers is seeded
and dispatched once, the product's own code makes each delivery's SES request (the limit's
payload, benchmarks/send_limit.py), and the pool is then put back as it was before the
dispatch (the same delivery ids too), before every run. Then, in turns, twice each (once at
100,000: its four runs alone take about half an hour on two slow cores):
- the equal-process limit: as many processes as the product's worker has (the Procfile's
  --concurrency), each a raw boto3 SESv2 `send_email` loop with one reused client over its
  share of those requests, started together at a barrier, timed to the last one finishing;
- the product, as it runs: the same readers due now, dispatched, and sent by a real Celery
  worker started as the Procfile starts it (Redis broker, the shared rate limiter in Redis,
  results written to PostgreSQL), timed from the dispatch to the last email recorded;
- the one-process limit: one such loop over all the requests;
- the product in one process: `deliveries_dispatch_due` then `deliveries_send` batch by batch
  in a child process (no Celery), whose peak memory is measured.
Each side's faster run counts. The sink's counts check every run: N accepted, N distinct
recipients, no errors, and the same bytes on both sides (exactly, but for the Message-ID,
which holds a process id and a random number).

The naive baselines (benchmarks/send_naive.py) run on a time-limited sample: the documented
bulk loop (one connection, render_to_string per reader, send_messages per 100), and
send_mail per reader (a new SES connection each). A breakdown run times each stage of the
send path in one process.

SES_MAX_SEND_RATE is set far above what the sink can take (SEND_RATE_CEILING), so the
shared limiter takes its slot for every email (its cost is measured) but never waits.
"""

import json
import os
import re
import sys
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

from benchmarks.send_pool import ReaderPool
from benchmarks.support import rounded

TARGET_EQUAL_PROCESS = 0.85  # the product's worker / the equal-process limit
TARGET_PER_PROCESS = 0.80  # the product in one process / the one-process limit
TARGET_VS_NAIVE = 3.0  # the product's worker / the documented bulk loop
MEMORY_FLAT_WITHIN = 0.15
NAIVE_SAMPLE = 5000
NAIVE_TIME_LIMIT_S = 45.0
SEND_RATE_CEILING = 100_000.0
FULL_N = 100_000
TURNS = 2
TURNS_AT_FULL_N = 1
PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


def bench_n() -> int:
    return int(os.environ.get("BENCH_N", "10000"))


def full_run() -> bool:
    return os.environ.get("BENCH_FULL", "") not in ("", "0", "false", "no")


def worker_concurrency() -> int:
    """The number of processes the shipped worker runs: its --concurrency in the Procfile."""
    line = next(line for line in PROCFILE.read_text().splitlines() if line.startswith("worker:"))
    found = re.search(r"--concurrency[= ](\d+)", line)
    if not found:
        raise RuntimeError(f"no --concurrency in the Procfile's worker line: {line}")
    return int(found.group(1))


# --- pieces shared by the parent and the child --------------------------------------------------


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
    import forecasts.sending.rate_stores
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
    timed(forecasts.sending.rate_stores.RedisRateLimiter, "acquire", "shared_rate_limiter")
    timed(forecasts.sending.rate_stores.RedisRateLimiter, "hold_back", "shared_rate_limiter")
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


# --- the parent: one pool of readers per size, sent again and again ------------------------------


def _checked(result: dict, sink, n: int, payload: dict, what: str) -> dict:
    """The run's result with what the sink received; raises unless it is N emails to N readers,
    with the payload's bytes (exactly for the limit; for the product, all but the Message-IDs)."""
    stats = sink.stats()
    result.update(
        sink_accepted=stats["accepted"],
        sink_distinct_recipients=stats["distinct_recipients"],
        sink_errors=stats["errors"],
        sink_bytes=stats["bytes"],
        sink_message_id_bytes=stats["message_id_bytes"],
    )
    problems = []
    if not stats["accepted"] == stats["distinct_recipients"] == result["sent"] == n or stats["errors"]:
        problems.append(f"sent {result['sent']}, the sink: {stats}")
    if stats["bytes"] - stats["message_id_bytes"] != payload["bytes"] - payload["message_id_bytes"]:
        problems.append(f"bytes {stats['bytes']} (Message-IDs {stats['message_id_bytes']}), payload {payload}")
    if what.startswith("limit") and stats["bytes"] != payload["bytes"]:
        problems.append(f"the limit's bytes {stats['bytes']} are not its payload's {payload['bytes']}")
    if problems:
        raise RuntimeError(f"{what} of {n}: " + "; ".join(problems))
    return result


def _limit_run(pool: ReaderPool, processes: int, sink, env_overrides: dict, payload_path: Path, payload: dict):
    from benchmarks import support
    from benchmarks.send_limit import run_limit

    env = support.environment()
    result = run_limit(payload_path, processes, sink, support.child_env(**env_overrides), env.root)
    return _checked(result, sink, pool.n, payload, f"limit ({processes} processes)")


def _product_in_child(pool: ReaderPool, sink, env_overrides: dict, payload: dict) -> dict:
    from benchmarks import support

    pool.rearm()
    sink.reset()
    support.settle()
    result = support.run_child(
        "benchmarks.bench_send",
        ["child", str(_batch_size())],
        timeout=max(600, pool.n / 20),
        env=support.child_env(**env_overrides),
    )
    result["sent"] = result["report"].get("sent", 0)
    result["recorded_sent"] = pool.sent_count()
    if result["recorded_sent"] != pool.n:
        raise RuntimeError(f"product send of {pool.n} in one process incomplete: {result}")
    return _checked(result, sink, pool.n, payload, "product (one process)")


def _batch_size() -> int:
    from django.conf import settings

    return settings.SEND_BATCH_SIZE


def _worker_run(pool: ReaderPool, sink, env_overrides: dict, payload: dict, concurrency: int, name: str) -> dict:
    """The send through a real Celery worker with the shipped --concurrency, Redis broker."""
    from benchmarks import support
    from devtools.servers import celery_worker, wait_for
    from forecasts.sending.dispatch import deliveries_dispatch_due

    env = support.environment()
    pool.rearm()
    worker = support.track(
        celery_worker(
            support.child_env(**env_overrides), env.root / f"worker-{name}.log", name=name, concurrency=concurrency
        )
    )
    n = pool.n
    try:
        wait_for(lambda: "ready" in worker.log(), timeout=60, what="the Celery worker")
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
        while pool.sent_count() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
        sent = pool.sent_count()
        # The prefork pool's children do the sending; their peak resident memory so far.
        peaks = [peak for pid in support.descendants(worker.pid) if (peak := support.peak_rss_mib(pid))]
    finally:
        worker.stop()
    result = {"sent": sent, "seconds": elapsed, "per_s": sent / elapsed, "processes": concurrency}
    result["worker_peak_rss_mib"] = max(peaks) if peaks else None
    return _checked(result, sink, n, payload, "product (Celery worker)")


def _with_cpu_shares(side_run) -> dict:
    """One side's run, with how the machine's CPU time went meanwhile: a run the host stole much
    of the CPU from (a virtual machine's "steal") is slower for reasons outside the code."""
    from benchmarks.__main__ import cpu_shares, cpu_times

    before = cpu_times()
    result = side_run()
    result["machine_cpu_share"] = cpu_shares(before, cpu_times())
    return result


def _best(runs: list[dict]) -> dict:
    return max(runs, key=lambda run: run["per_s"])


def _bytes(run: dict) -> dict:
    return {"total": run["sink_bytes"], "mean": rounded(run["sink_bytes"] / run["sink_accepted"])}


def _measure_size(n: int, sink, overrides: dict, concurrency: int, naive=None) -> dict:
    """The four sides at one size, in turns (TURNS, or TURNS_AT_FULL_N), against the same readers'
    emails; with `naive` (a run of the documented naive loop), that too in each turn."""
    from benchmarks import support

    pool = ReaderPool(n, support.utc_now(), f"pool{n}")
    payload_path = support.environment().root / f"limit-payload-{n}.bin"
    payload = pool.write_payloads(payload_path)
    runs: dict[str, list[dict]] = {"limit_equal": [], "worker": [], "limit_one": [], "one_process": []}
    # The limit and the product take turns, and each side's faster run counts: load from
    # elsewhere on a shared machine can then flatter neither side's ratio.
    turns = TURNS_AT_FULL_N if n >= FULL_N else TURNS
    for round_number in range(1, turns + 1):
        sides = {
            "limit_equal": partial(_limit_run, pool, concurrency, sink, overrides, payload_path, payload),
            "worker": partial(_worker_run, pool, sink, overrides, payload, concurrency, f"w{n}r{round_number}"),
            "limit_one": partial(_limit_run, pool, 1, sink, overrides, payload_path, payload),
            "one_process": partial(_product_in_child, pool, sink, overrides, payload),
            **({"naive_honest": naive} if naive is not None else {}),
        }
        for side, side_run in sides.items():
            runs.setdefault(side, []).append(_with_cpu_shares(side_run))
    payload_path.unlink()
    best = {side: _best(side_runs) for side, side_runs in runs.items()}
    figures = {
        "readers": n,
        "turns": turns,
        "equal_process_ratio": support.rounded(best["worker"]["per_s"] / best["limit_equal"]["per_s"], 3),
        "per_process_ratio": support.rounded(best["one_process"]["per_s"] / best["limit_one"]["per_s"], 3),
        # The old headline, kept to compare with earlier results: the worker's processes against one loop.
        "worker_vs_one_process_limit": support.rounded(best["worker"]["per_s"] / best["limit_one"]["per_s"], 3),
        "processes": {"limit_equal": concurrency, "product_worker": concurrency, "limit_one": 1, "product_one": 1},
        "payload_bytes": {
            "emails": payload["emails"],
            "total": payload["bytes"],
            "mean": support.rounded(payload["bytes"] / payload["emails"]),
            "message_id_total": payload["message_id_bytes"],
        },
        "sink_bytes": {side: _bytes(run) for side, run in best.items() if side != "naive_honest"},
        "sink_bytes_equal_but_message_ids": True,  # _checked raised otherwise, for every run
        "naive_honest_sample": best["naive_honest"]["sent"] if naive else None,
        "naive_honest_mean_bytes": best["naive_honest"]["mean_bytes"] if naive else None,
        "one_process_dispatch_s": support.rounded(best["one_process"]["dispatch_s"], 2),
        "one_process_send_s": support.rounded(best["one_process"]["send_s"], 2),
        "limit_equal_barrier_start_spread_ms": support.rounded(
            1000 * max(run["start_spread_s"] for run in runs["limit_equal"]), 2
        ),
        "sender_peak_rss_mib": support.rounded(max(run["peak_rss_mib"] for run in runs["one_process"])),
        "sender_rss_before_send_mib": support.rounded(runs["one_process"][0]["rss_before_send_mib"]),
        "worker_peak_rss_mib": support.rounded(max(run["worker_peak_rss_mib"] or 0 for run in runs["worker"])),
    }
    for side, side_runs in runs.items():
        figures[f"{side}_runs_per_s"] = [support.rounded(run["per_s"]) for run in side_runs]
        figures[f"{side}_runs_cpu_steal"] = [run["machine_cpu_share"].get("steal") for run in side_runs]
        figures[f"{side}_per_s"] = support.rounded(best[side]["per_s"])
    return figures


def _breakdown(sink, overrides: dict) -> dict:
    """Where an email's time goes: a run in one process with a timer around each stage (one SES
    call at a time, so the stages add up), right after a one-process limit over the same readers'
    emails, so the two are measured under the same load."""
    from benchmarks import support

    pool = ReaderPool(BREAKDOWN_N, support.utc_now(), "breakdown")
    path = support.environment().root / "limit-payload-breakdown.bin"
    payload = pool.write_payloads(path)
    limit = _limit_run(pool, 1, sink, overrides, path, payload)
    path.unlink()
    pool.rearm()
    sink.reset()
    support.settle()
    result = support.run_child(
        "benchmarks.bench_send",
        ["child", str(_batch_size()), "breakdown"],
        timeout=600,
        env=support.child_env(**overrides, SEND_CONCURRENCY="1"),
    )
    result["sent"] = result["report"].get("sent", 0)
    _checked(result, sink, pool.n, payload, "product (breakdown run)")
    result["limit_ms_per_email"] = 1000 / limit["per_s"]
    return result


def _naive_readers(now) -> list:
    """NAIVE_SAMPLE readers, never due in this run (the naive loops send to them directly)."""
    from accounts.models import Subscription
    from benchmarks import support

    support.seed_subscribers(NAIVE_SAMPLE, due=0, now=now, prefix="naive")
    readers = Subscription.objects.select_related("user").filter(user__email__startswith="naive-")
    readers.update(next_send_at=now + timedelta(days=2))  # never picked up by a later dispatch
    return list(readers.order_by("id"))


def run() -> dict:
    from django.conf import settings

    from benchmarks import send_naive, support

    n = bench_n()
    sizes = [n] + ([FULL_N] if (full_run() or n >= FULL_N) and n != FULL_N else [])
    if full_run() and 10_000 not in sizes:
        sizes.insert(0, 10_000)
    concurrency = worker_concurrency()
    support.environment()
    support.use_database("bench_send")
    now = support.utc_now()
    prepare_s = support.prepare_forecasts(support.local_dates_due(now))

    with support.SinkProcess(max_send_rate=SEND_RATE_CEILING, enforce_rate=False) as sink:
        settings.AWS_SES_REGION_ENDPOINT_URL = sink.endpoint_url
        settings.SES_MAX_SEND_RATE = SEND_RATE_CEILING
        overrides = {"AWS_SES_REGION_ENDPOINT_URL": sink.endpoint_url, "SES_MAX_SEND_RATE": str(SEND_RATE_CEILING)}

        readers = _naive_readers(now)

        def naive() -> dict:
            sink.reset()
            return send_naive.checked(send_naive.send_honest(readers, NAIVE_TIME_LIMIT_S), sink)

        # The documented naive loop takes its turn beside the product's at the main size.
        by_size = {
            size: _measure_size(size, sink, overrides, concurrency, naive if size == n else None) for size in sizes
        }
        sink.reset()
        per_reader = send_naive.checked(send_naive.send_mail_per_reader(readers, NAIVE_TIME_LIMIT_S), sink)

        breakdown = _breakdown(sink, overrides)

    support.drop_database("bench_send")
    main = by_size[n]
    figures = {
        "subscribers": n,
        "send_concurrency": settings.SEND_CONCURRENCY,
        "processes": main["processes"],
        "limit_equal_process_per_s": main["limit_equal_per_s"],
        "product_worker_per_s": main["worker_per_s"],
        "equal_process_ratio": main["equal_process_ratio"],
        "limit_one_process_per_s": main["limit_one_per_s"],
        "one_process_per_s": main["one_process_per_s"],
        "per_process_ratio": main["per_process_ratio"],
        "payload_bytes": main["payload_bytes"],
        "sink_bytes": main["sink_bytes"],
        "naive_honest_per_s": main["naive_honest_per_s"],
        "naive_honest_runs_per_s": main["naive_honest_runs_per_s"],
        "naive_honest_sample": main["naive_honest_sample"],
        "naive_honest_mean_bytes": main["naive_honest_mean_bytes"],
        "naive_send_mail_per_reader_per_s": support.rounded(per_reader["per_s"], 2),
        "naive_send_mail_per_reader_sample": per_reader["sent"],
        "naive_send_mail_per_reader_mean_bytes": per_reader["mean_bytes"],
        "product_vs_naive_honest": support.rounded(main["worker_per_s"] / main["naive_honest_per_s"], 2),
        "one_process_vs_naive_honest": support.rounded(main["one_process_per_s"] / main["naive_honest_per_s"], 2),
        "product_vs_naive_send_mail_per_reader": support.rounded(main["worker_per_s"] / per_reader["per_s"], 1),
        "forecasts_prepare_s": support.rounded(prepare_s, 2),
        "by_size": {str(size): figures_at for size, figures_at in by_size.items()},
    }
    figures["breakdown_ms_per_email"] = {
        label: round(value, 3) for label, value in sorted(breakdown["ms_per_email"].items(), key=lambda kv: -kv[1])
    }
    figures["breakdown_limit_ms_per_email"] = round(breakdown["limit_ms_per_email"], 3)
    for size, figures_at in by_size.items():
        figures[f"sender_peak_rss_mib_at_{size}"] = figures_at["sender_peak_rss_mib"]
    if 10_000 in by_size and FULL_N in by_size:
        low, high = by_size[10_000]["sender_peak_rss_mib"], by_size[FULL_N]["sender_peak_rss_mib"]
        figures["sender_peak_rss_growth_10k_to_100k"] = support.rounded(high / low - 1, 3)
        figures["memory_flat"] = high / low - 1 <= MEMORY_FLAT_WITHIN
    figures["aims"] = {
        f"{name}_at_{size}": {"figure": value, "aim": aim, "met": value >= aim}
        for size, at in by_size.items()
        for name, value, aim in (
            ("equal_process_ratio", at["equal_process_ratio"], TARGET_EQUAL_PROCESS),
            ("per_process_ratio", at["per_process_ratio"], TARGET_PER_PROCESS),
        )
    }
    figures["aims"]["product_vs_naive_honest"] = {
        "figure": figures["product_vs_naive_honest"],
        "aim": TARGET_VS_NAIVE,
        "met": figures["product_vs_naive_honest"] >= TARGET_VS_NAIVE,
    }
    figures["meets_equal_process"] = all(a["met"] for k, a in figures["aims"].items() if k.startswith("equal"))
    figures["meets_per_process"] = all(a["met"] for k, a in figures["aims"].items() if k.startswith("per_process"))
    figures["meets_vs_naive"] = figures["aims"]["product_vs_naive_honest"]["met"]
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_main(sys.argv[2:])
    else:
        from benchmarks.__main__ import main

        sys.exit(main(["send"]))
