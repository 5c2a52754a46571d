"""Create synthetic, confirmed subscribers for demos and load tests, in bulk.

manage.py seed_demo --subscribers 100000 [--seed 7]
Readers get unique addresses at example.test (a reserved domain: no mail can reach anyone),
time zones from UTC-11 to UTC+14 and morning delivery times, and are due from now on.
"""

import random
import secrets
from datetime import time

from allauth.account.models import EmailAddress
from django.db import transaction
from django.utils import timezone

from accounts.models import Subscription, User, all_topics
from forecasts.management.commands._cli import OneLineCommand, usage_error
from forecasts.zodiac import SIGN_SLUGS

MAX_SUBSCRIBERS = 1_000_000
BATCH = 5000
TIME_ZONES = (
    "Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver",
    "America/Chicago", "America/New_York", "America/Havana", "America/Sao_Paulo", "America/St_Johns",
    "Atlantic/Azores", "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Africa/Lagos", "Africa/Cairo",
    "Europe/Athens", "Europe/Moscow", "Asia/Tehran", "Asia/Dubai", "Asia/Kabul", "Asia/Karachi", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Dhaka", "Asia/Yangon", "Asia/Bangkok", "Asia/Shanghai", "Australia/Perth",
    "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney", "Pacific/Noumea", "Pacific/Auckland",
    "Pacific/Chatham", "Pacific/Tongatapu", "Pacific/Kiritimati",
)  # fmt: skip
DELIVERY_TIMES = tuple(time(hour, minute) for hour in range(5, 10) for minute in (0, 15, 30, 45))


class Command(OneLineCommand):
    help = "Create N confirmed synthetic subscribers (example.test addresses) spread over real time zones."

    def add_arguments(self, parser):
        parser.add_argument("--subscribers", type=int, required=True, help=f"how many (1..{MAX_SUBSCRIBERS})")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable spread")

    def handle(self, *args, subscribers: int, seed: int | None, **options):
        if not 1 <= subscribers <= MAX_SUBSCRIBERS:
            raise usage_error(f"--subscribers must be between 1 and {MAX_SUBSCRIBERS}")
        rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
        tag = secrets.token_hex(3)
        now = timezone.now()
        unusable = "!" + secrets.token_urlsafe(30)  # starts with "!": no one can log in as a demo reader
        topics = all_topics()
        schedule: dict[tuple[str, time], object] = {}
        created = 0
        for start in range(0, subscribers, BATCH):
            count = min(BATCH, subscribers - start)
            with transaction.atomic():
                users = User.objects.bulk_create(
                    [
                        User(email=f"demo-{tag}-{start + i:07d}@example.test", password=unusable, date_joined=now)
                        for i in range(count)
                    ]
                )
                EmailAddress.objects.bulk_create(
                    [EmailAddress(user=user, email=user.email, verified=True, primary=True) for user in users]
                )
                rows = []
                for user in users:
                    zone_name, at = rng.choice(TIME_ZONES), rng.choice(DELIVERY_TIMES)
                    row = Subscription(
                        user=user,
                        sign=rng.choice(SIGN_SLUGS),
                        time_zone=zone_name,
                        delivery_time=at,
                        topics=rng.sample(topics, rng.randint(1, len(topics))),
                        status=Subscription.Status.ACTIVE,
                        status_changed_at=now,
                        confirmed_at=now,
                    )
                    # bulk_create skips save(): set next_send_at by the same rule, once per zone and time.
                    if (zone_name, at) not in schedule:
                        schedule[(zone_name, at)] = row.compute_next_send_at(now)
                    row.next_send_at = schedule[(zone_name, at)]
                    rows.append(row)
                Subscription.objects.bulk_create(rows)
            created += count
        self.stdout.write(f"Created {created} confirmed demo subscribers (demo-{tag}-*@example.test).")
