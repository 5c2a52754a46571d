"""The SES account's send rate, kept: how close the workers come to it, and never above it.

For each rate R (SES_MAX_SEND_RATE) and each layout of worker hosts (one Celery worker with
--concurrency=2 as the Procfile runs it; two such workers, separate pools, the same Redis and
database, standing for two machines), N readers all due at the same minute are dispatched on
that minute, as beat does, and sent to the SES sink (its own process, rate enforcement off:
it only records when each email arrived). From the sink's arrival times:
- the achieved rate from the first email to the last, against R (aim >= 0.97 R);
- the most emails in any 1-second window (aim <= R), and the shortest time spanned by R + 1
  consecutive emails (above 1 s: no second held more than R; how much room was left);
- from each reader's due time (Delivery.due_at, the minute) to the sink accepting their email:
  p50 and p99 (at R = 50, 20,000 readers take 400 s whatever the limiter does: compare with N / R).
The same send with no rate to keep (SES_MAX_SEND_RATE = 1,000,000: the limiter books slots but
never waits) says how fast the workers can send at all on this machine, so a rate they fall
short of is seen to be held back by the CPU, not by the limiter.
BENCH_RATE_N readers (default 20,000); BENCH_RATES (default "50,200,1000"); BENCH_RATE_HOSTS
(default "1,2").
"""

import os
import sys
import time
from datetime import timedelta
from itertools import pairwise

from devtools.rates import most_in_any_window

TARGET_VS_RATE = 0.97
NO_LIMIT_RATE = 1_000_000.0
# Setting up a run (workers starting, readers seeded) takes this long at most before its minute comes.
SETUP_S = 20.0
STALLED_S = 60.0


def bench_n() -> int:
    return int(os.environ.get("BENCH_RATE_N", "20000"))


def _numbers(name: str, default: str) -> list[float]:
    return [float(part) for part in os.environ.get(name, default).split(",") if part.strip()]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def windows_over(times: list[float], capacity: int) -> int:
    """How many emails start a second that holds more than `capacity` (0 when the rate held)."""
    times = sorted(times)
    return sum(1 for i in range(len(times) - capacity) if times[i + capacity] - times[i] <= 1.0)


def tightest_span(times: list[float], count: int) -> float | None:
    """The shortest time spanned by `count` consecutive arrivals (None if there are fewer)."""
    times = sorted(times)
    if len(times) < count:
        return None
    return min(times[i + count - 1] - times[i] for i in range(len(times) - count + 1))


def _gaps_ms(times: list[float]) -> dict[str, float]:
    gaps = [1000 * (later - earlier) for earlier, later in pairwise(times)]
    if not gaps:
        return {}
    return {f"gap_ms_p{int(q * 100):02d}": round(percentile(gaps, q), 2) for q in (0.01, 0.5, 0.99)} | {
        "gap_ms_max": round(max(gaps), 1)
    }


def _due_times(prefix: str) -> dict[str, float]:
    from forecasts.models import Delivery

    rows = Delivery.objects.filter(subscription__user__email__startswith=prefix + "-").values_list(
        "subscription__user__email", "due_at"
    )
    return {email: due_at.timestamp() for email, due_at in rows}


def _cancel_unsent(prefix: str) -> None:
    from forecasts.models import Delivery

    Delivery.objects.filter(subscription__user__email__startswith=prefix + "-").exclude(
        status=Delivery.Status.SENT
    ).update(status=Delivery.Status.CANCELLED, error="benchmark run over")


def _sent_count(prefix: str) -> int:
    from forecasts.models import Delivery

    return Delivery.objects.filter(
        status=Delivery.Status.SENT, subscription__user__email__startswith=prefix + "-"
    ).count()


def send_on_the_minute(n: int, rate: float, hosts: int, sink, prefix: str) -> dict:
    """N readers due at the next minute, dispatched on it, sent by `hosts` real Celery workers."""
    from benchmarks import support
    from devtools.servers import celery_worker, wait_for
    from forecasts.sending.dispatch import deliveries_dispatch_due

    env = support.environment()
    now = support.utc_now()
    minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (minute - now).total_seconds() < SETUP_S:
        minute += timedelta(minutes=1)
    overrides = {"AWS_SES_REGION_ENDPOINT_URL": sink.endpoint_url, "SES_MAX_SEND_RATE": str(rate)}
    workers = [
        support.track(
            celery_worker(support.child_env(**overrides), env.root / f"worker-{prefix}-{i}.log", name=f"{prefix}-{i}")
        )
        for i in range(hosts)
    ]
    try:
        for worker in workers:
            wait_for(lambda worker=worker: "ready" in worker.log(), timeout=60, what="the Celery worker")
        # Due at `minute` exactly: seed_subscribers makes readers due a minute before its `now`.
        support.seed_subscribers(n, due=n, now=minute + timedelta(minutes=1), prefix=prefix, spread_minutes=1)
        sink.reset()
        support.settle()
        time.sleep(max(0.0, (minute - support.utc_now()).total_seconds()))
        dispatched_at = time.time()
        deliveries_dispatch_due(support.utc_now(), enqueue=True, time_budget=600)
        dispatch_s = time.time() - dispatched_at
        # Until every email is recorded, or nothing has arrived for STALLED_S (the machine may be
        # far slower than the rate asked for: that is what the no-limit runs measure).
        last, last_change = -1, time.monotonic()
        while (accepted := sink.stats()["accepted"]) < n and time.monotonic() - last_change < STALLED_S:
            if accepted != last:
                last, last_change = accepted, time.monotonic()
            time.sleep(0.5)
        while _sent_count(prefix) < n and time.monotonic() - last_change < STALLED_S:
            time.sleep(0.2)
        sent = _sent_count(prefix)
    finally:
        for worker in workers:
            worker.stop()
    _cancel_unsent(prefix)  # nothing of this run is left for the next run's workers
    arrivals = [(at, to) for at, to in sink.arrivals() if to.startswith(prefix + "-")]
    stats = sink.stats()
    due = _due_times(prefix)
    times = sorted(at for at, _ in arrivals)
    waits = [at - due[to] for at, to in arrivals if to in due]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    achieved = (len(times) - 1) / span if span else 0.0
    capacity = int(rate)
    tightest = tightest_span(times, capacity + 1) if rate < NO_LIMIT_RATE else None
    return {
        "rate": rate,
        "hosts": hosts,
        "worker_processes": 2 * hosts,
        "readers": n,
        "sent": sent,
        "sink_accepted": stats["accepted"],
        "sink_distinct_recipients": stats["distinct_recipients"],
        "sink_errors": stats["errors"],
        "first_to_last_s": round(span, 2),
        "achieved_per_s": round(achieved, 1),
        "achieved_vs_rate": round(achieved / rate, 4) if rate < NO_LIMIT_RATE else None,
        "most_in_any_1s": most_in_any_window(times, 1.0),
        "tightest_span_of_rate_plus_one_s": round(tightest, 4) if tightest is not None else None,
        "seconds_over_rate": windows_over(times, capacity) if rate < NO_LIMIT_RATE else None,
        # Between consecutive emails: even sends keep these near 1 / R; spread, the jitter SES sees.
        **_gaps_ms(times),
        "dispatch_s": round(dispatch_s, 2),
        "due_to_dispatch_s": round(dispatched_at - minute.timestamp(), 2),
        "due_to_first_accepted_s": round(times[0] - minute.timestamp(), 2) if times else None,
        "due_to_accepted_p50_s": round(percentile(waits, 0.50), 2) if waits else None,
        "due_to_accepted_p99_s": round(percentile(waits, 0.99), 2) if waits else None,
        "n_over_rate_s": round(n / rate, 1) if rate < NO_LIMIT_RATE else None,
    }


def run() -> dict:
    from benchmarks import support

    n = bench_n()
    rates = _numbers("BENCH_RATES", "50,200,1000")
    host_counts = [int(h) for h in _numbers("BENCH_RATE_HOSTS", "1,2")]
    support.environment()
    support.use_database("bench_rate")
    now = support.utc_now()
    # Readers are due over the next hour of runs: forecasts for every local date they may have.
    days = support.local_dates_due(now) + support.local_dates_due(now + timedelta(hours=1))
    support.prepare_forecasts(sorted(set(days)))

    figures: dict = {"readers": n, "rates": rates, "host_layouts": host_counts}
    aims_met = True
    with support.SinkProcess(max_send_rate=NO_LIMIT_RATE, enforce_rate=False) as sink:
        for hosts in host_counts:
            result = send_on_the_minute(n, NO_LIMIT_RATE, hosts, sink, f"free{hosts}")
            figures[f"no_limit_{hosts}_host"] = result
            print(f"   no limit, {hosts} host(s): {result['achieved_per_s']}/s", flush=True)
        for rate in rates:
            for hosts in host_counts:
                result = send_on_the_minute(n, rate, hosts, sink, f"r{int(rate)}h{hosts}")
                result["meets_rate_aim"] = result["achieved_vs_rate"] >= TARGET_VS_RATE
                result["never_above_rate"] = result["most_in_any_1s"] <= int(rate)
                complete = result["sink_distinct_recipients"] == result["sent"] == n
                aims_met = aims_met and result["meets_rate_aim"] and result["never_above_rate"] and complete
                figures[f"rate_{int(rate)}_{hosts}_host"] = result
                print(
                    f"   R={rate:g}, {hosts} host(s): {result['achieved_vs_rate']} R, "
                    f"max {result['most_in_any_1s']} in 1 s, p99 {result['due_to_accepted_p99_s']} s",
                    flush=True,
                )
    support.drop_database("bench_rate")
    figures["all_aims_met"] = aims_met
    return figures


if __name__ == "__main__":
    from benchmarks.__main__ import main

    sys.exit(main(["rate"]))
