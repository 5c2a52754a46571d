"""The send benchmark's readers: one pool per size, made due again exactly as before each run."""

from pathlib import Path


class ReaderPool:
    """`n` readers due now, who can be made due again exactly as they were before a dispatch.

    Each run sends the same readers' emails: `rearm()` deletes the pool's deliveries, gives
    its subscriptions back their due time (and no last date), and sets the deliveries' id
    sequence back, so the next dispatch makes the same deliveries with the same ids. Dead rows
    are vacuumed away, so no run inherits another's.
    """

    def __init__(self, n: int, now, prefix: str) -> None:
        from django.db import connection

        from benchmarks import support

        self.n, self.prefix = n, prefix
        support.seed_subscribers(n, due=n, now=now, prefix=self.prefix)
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS bench_send_pool "
                "(pool text, subscription_id bigint, next_send_at timestamptz)"
            )
            cursor.execute(
                """
                INSERT INTO bench_send_pool
                SELECT %s, s.id, s.next_send_at FROM accounts_subscription s JOIN accounts_user u ON u.id = s.user_id
                WHERE u.email LIKE %s
                """,
                [self.prefix, self.prefix + "-%"],
            )
            cursor.execute("SELECT pg_get_serial_sequence('forecasts_delivery', 'id')")
            self.sequence = cursor.fetchone()[0]
            cursor.execute(f"SELECT last_value, is_called FROM {self.sequence}")  # noqa: S608 - from PostgreSQL
            self.sequence_state = cursor.fetchone()

    def rearm(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                """DELETE FROM forecasts_delivery d USING bench_send_pool p
                   WHERE p.pool = %s AND d.subscription_id = p.subscription_id""",
                [self.prefix],
            )
            cursor.execute(
                """UPDATE accounts_subscription s SET next_send_at = p.next_send_at, last_local_date = NULL
                   FROM bench_send_pool p WHERE p.pool = %s AND s.id = p.subscription_id""",
                [self.prefix],
            )
            cursor.execute("SELECT setval(%s, %s, %s)", [self.sequence, *self.sequence_state])
            cursor.execute("VACUUM ANALYZE forecasts_delivery")
            cursor.execute("VACUUM ANALYZE accounts_subscription")

    def write_payloads(self, path: Path) -> dict:
        """Dispatch the pool once (no tasks), write the limit's requests for its deliveries, re-arm."""
        from benchmarks import support
        from benchmarks.send_limit import write_payloads
        from forecasts.sending.dispatch import deliveries_dispatch_due

        dispatched = deliveries_dispatch_due(support.utc_now(), enqueue=False, time_budget=600)
        if len(dispatched.delivery_ids) != self.n:
            raise RuntimeError(f"pool of {self.n}: {len(dispatched.delivery_ids)} deliveries dispatched")
        payload = write_payloads(sorted(dispatched.delivery_ids), path)
        self.rearm()
        return payload

    def sent_count(self) -> int:
        return _sent_count(self.prefix)


def _sent_count(prefix: str) -> int:
    from forecasts.models import Delivery

    return Delivery.objects.filter(
        status=Delivery.Status.SENT, subscription__user__email__startswith=prefix + "-"
    ).count()
