"""Send one sample daily email to an address, through the configured email backend.

manage.py send_test_email ADDRESS [--sign leo] [--time-zone Europe/Paris]
"""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.validators import validate_email
from django.utils import timezone

from accounts.models import Subscription, User, all_topics
from accounts.scheduling import DEFAULT_DELIVERY_TIME, known_time_zones, zone
from forecasts.management.commands._cli import OneLineCommand, usage_error
from forecasts.models import Forecast
from forecasts.sending.emails.reader import DailyEmailRenderer
from forecasts.sending.send import forecasts_for
from forecasts.zodiac import SIGN_SLUGS, SIGNS_BY_SLUG


def sample_forecast(sign: str, day) -> Forecast:
    """An unsaved, clearly labelled sample with the day's real sky facts, for when none is written yet."""
    facts: list[dict] = []
    try:
        from forecasts.writing.transits import transits_for_sign

        start = datetime.combine(day, datetime.min.time(), tzinfo=zone("UTC"))
        facts = transits_for_sign(sign, start, start + timedelta(days=1)).facts
    except Exception:  # the sample still shows the layout without them
        facts = []
    name = SIGNS_BY_SLUG[sign].name
    return Forecast(
        date=day,
        sign=sign,
        status=Forecast.Status.DRAFT,
        headline="A sample of your morning email",
        overview=(
            f"No {name} forecast has been written for {day.day} {day:%B %Y} yet, so this sample shows the layout "
            "of the daily email with the day's real sky. The reading itself appears here once it is written."
        ),
        sections={topic: f"Your {topic} reading for the day appears here." for topic in all_topics()},
        facts=facts,
    )


class Command(OneLineCommand):
    help = "Send a sample daily email to ADDRESS through the configured backend (outbox or SES)."

    def add_arguments(self, parser):
        parser.add_argument("address", help="where to send it")
        parser.add_argument("--sign", default=None, help="sign to use (default: the reader's, else aries)")
        parser.add_argument("--time-zone", default=None, help="time zone for event times (default: the reader's)")

    def handle(self, *args, address: str, sign: str | None, time_zone: str | None, **options):
        address = address.strip()
        try:
            validate_email(address)
        except ValidationError:
            raise usage_error(f"{address!r} is not an email address") from None
        if sign is not None and sign not in SIGN_SLUGS:
            raise usage_error(f"unknown sign {sign!r} (choose from {', '.join(SIGN_SLUGS)})")
        if time_zone is not None and time_zone not in known_time_zones():
            raise usage_error(f"{time_zone!r} is not a known time zone, e.g. Europe/Paris")

        subscription = Subscription.objects.select_related("user").filter(user__email__iexact=address).first()
        if subscription is None:
            # Nobody subscribed with this address: a reader in memory only (the email has no unsubscribe header).
            subscription = Subscription(
                user=User(email=address), sign=sign or "aries", time_zone=time_zone or "UTC",
                delivery_time=DEFAULT_DELIVERY_TIME, topics=all_topics(),
            )  # fmt: skip
        if sign:
            subscription.sign = sign
        if time_zone:
            subscription.time_zone = time_zone
        day = timezone.now().astimezone(zone(subscription.time_zone)).date()
        forecast = forecasts_for([(day, subscription.sign)]).get((day, subscription.sign))
        forecast = forecast or sample_forecast(subscription.sign, day)
        message = DailyEmailRenderer(subject_prefix="[Test] ").message(subscription, forecast)
        message.to = [address]
        connection = get_connection()
        sent = connection.send_messages([message])
        if not sent:
            raise usage_error(f"the email backend accepted no recipient for {address}")
        message_id = message.extra_headers.get("message_id")
        suffix = f" (SES message id {message_id})" if message_id else ""
        self.stdout.write(f"Sent a sample {SIGNS_BY_SLUG[subscription.sign].name} email to {address}{suffix}.")
