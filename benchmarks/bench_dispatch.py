"""Dispatch on PostgreSQL: 1,000,000 subscriptions, 100,000 of them due at once.

Seeds users and subscriptions with set-based SQL (generate_series), then times
`deliveries_dispatch_due(now, enqueue=False)` until every due subscription is claimed and has
its Delivery. The query plans of one dispatch chunk (EXPLAIN (ANALYZE, BUFFERS)) are kept in
the results, with whether each uses the index it should. BENCH_DISPATCH_TOTAL and
BENCH_DISPATCH_DUE change the sizes.
"""

import os
import re
import time

TARGET_S = 10.0
# Each dispatch call stops after its time budget (the next beat run continues); we call again.
MAX_CALLS = 1000


def _sizes() -> tuple[int, int]:
    return int(os.environ.get("BENCH_DISPATCH_TOTAL", "1000000")), int(os.environ.get("BENCH_DISPATCH_DUE", "100000"))


INDEX_USE = re.compile(
    r"(?:Index (?:Only )?Scan (?:Backward )?using|Bitmap Index Scan on|Conflict Arbiter Indexes:) (\w+)"
)
# A thousand ids in a plan or a query say nothing: keep the first few.
LONG_LIST = re.compile(r"(\{|\(|ARRAY\[)([^{}()\[\]]{200,})(\}|\)|\])")


def _short_list(match: re.Match) -> str:
    items = match.group(2).split(",")
    return f"{match.group(1)}{','.join(items[:5])}, ... ({len(items)} items){match.group(3)}"


def _explain_chunk(now) -> list[dict]:
    """Run one dispatch chunk in a transaction that is rolled back; EXPLAIN every statement it made."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from forecasts.sending.dispatch import DispatchResult, _dispatch_chunk

    plans = []
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            _dispatch_chunk(now, settings.DISPATCH_CHUNK_SIZE, False, DispatchResult())
        with connection.cursor() as cursor:
            for query in captured.captured_queries:
                sql = query["sql"]
                if not sql.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE")):
                    continue
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = LONG_LIST.sub(_short_list, "\n".join(row[0] for row in cursor.fetchall()))
                plans.append(
                    {
                        "query": LONG_LIST.sub(_short_list, sql),
                        "indexes": sorted(set(INDEX_USE.findall(plan))),
                        "seq_scan": "Seq Scan" in plan,
                        "plan": plan,
                    }
                )
        transaction.set_rollback(True)
    return plans


def run() -> dict:
    from benchmarks import support

    total, due = _sizes()
    support.environment()
    from django.db import connection

    from forecasts.models import Delivery
    from forecasts.sending.dispatch import deliveries_dispatch_due

    support.use_database("bench_dispatch")
    now = support.utc_now()
    began = time.perf_counter()
    support.seed_subscribers(total, due=due, now=now, prefix="dispatch")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE accounts_subscription")
    seed_s = time.perf_counter() - began

    plans = _explain_chunk(now)

    calls = claimed = chunks = late = 0
    began = time.perf_counter()
    while calls < MAX_CALLS:
        result = deliveries_dispatch_due(now, enqueue=False)
        calls += 1
        claimed += result.claimed
        chunks += result.chunks
        late += result.skipped_late
        if result.claimed == 0 or claimed >= due:
            break
    dispatch_s = time.perf_counter() - began
    deliveries = Delivery.objects.count()
    support.drop_database("bench_dispatch")
    if claimed != due or deliveries != due:
        raise RuntimeError(f"dispatch claimed {claimed} and made {deliveries} deliveries of {due} due")
    claim_plan = plans[0] if plans else {}
    return {
        "subscriptions": total,
        "due": due,
        "seed_s": support.rounded(seed_s),
        "dispatch_s": support.rounded(dispatch_s, 2),
        "dispatch_per_s": support.rounded(due / dispatch_s),
        "deliveries_created": deliveries,
        "skipped_late": late,
        "chunks": chunks,
        "calls": calls,
        "claim_uses_subscription_due_idx": "subscription_due_idx" in claim_plan.get("indexes", []),
        "any_seq_scan": any(plan["seq_scan"] for plan in plans),
        "query_plans": plans,
        "target_s": TARGET_S,
        "meets_target": dispatch_s < TARGET_S,
    }
