from collections.abc import Iterable

from django.conf import settings
from django.db import models

from forecasts.topics import TOPIC_LABELS
from forecasts.zodiac import SIGN_CHOICES


class Passage(models.Model):
    """One passage of the astrology knowledge base (loaded from forecasts/writing/knowledge_base/*.yaml)."""

    class Kind(models.TextChoices):
        SIGN_PROFILE = "sign_profile", "Sign profile"
        BODY_IN_SIGN = "body_in_sign", "Body in sign"
        BODY_IN_HOUSE = "body_in_house", "Body in house"
        ASPECT = "aspect", "Aspect"
        RETROGRADE = "retrograde", "Retrograde"
        LUNATION = "lunation", "Lunation"
        ECLIPSE = "eclipse", "Eclipse"

    key = models.SlugField(max_length=120, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    body = models.CharField(max_length=16, blank=True)
    other_body = models.CharField(max_length=16, blank=True)
    sign = models.CharField(max_length=12, choices=SIGN_CHOICES, blank=True)
    house = models.PositiveSmallIntegerField(null=True, blank=True)
    aspect = models.CharField(max_length=16, blank=True)
    topics = models.JSONField(default=list)
    title = models.CharField(max_length=200)
    text = models.TextField()
    # Hash of the indexed content; kb_index pushes only rows whose hash changed.
    content_hash = models.CharField(max_length=64, editable=False)
    indexed_hash = models.CharField(max_length=64, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        indexes = [models.Index(fields=["kind", "body", "sign"], name="passage_kind_body_sign_idx")]

    def __str__(self) -> str:
        return self.title


class ForecastQuerySet(models.QuerySet):
    def ready(self) -> "ForecastQuerySet":
        """Forecasts a reader may be shown: written (draft) or approved, not generating or failed."""
        return self.filter(status__in=(Forecast.Status.DRAFT, Forecast.Status.APPROVED))


class Forecast(models.Model):
    """The reading for one sign on one date; what is sent is what this row says."""

    class Status(models.TextChoices):
        GENERATING = "generating", "Generating"
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        FAILED = "failed", "Failed"

    class Generator(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        OFFLINE = "offline", "Offline composer"

    date = models.DateField()
    sign = models.CharField(max_length=12, choices=SIGN_CHOICES)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.GENERATING)
    headline = models.CharField(max_length=200, blank=True)
    overview = models.TextField(blank=True)
    sections = models.JSONField(default=dict, blank=True, help_text="Topic -> a short note on that topic.")
    advice = models.JSONField(default=dict, blank=True, help_text='The optional one-line {"do": ..., "dont": ...}.')
    # The phrasebook entries the offline composer used: the sign's memory of what it has read,
    # so the next 30 readings repeat none of them (forecasts/writing/memory.py).
    phrasings = models.JSONField(default=list, blank=True, editable=False)
    facts = models.JSONField(default=list, blank=True, help_text="The sky facts the text was written from.")
    passages = models.ManyToManyField(Passage, blank=True, related_name="forecasts")
    generator = models.CharField(max_length=12, choices=Generator.choices, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    fallback_reason = models.TextField(blank=True, help_text="Why the offline composer wrote it, if it did.")
    grounded = models.BooleanField(default=False)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Who holds a `generating` claim ("worker@host/pid", forecasts/sending/holders.py): when that
    # worker is lost, the claim is released at once (forecasts/sending/recovery.py).
    # A database default too: code from before the column (a rolling deploy) still inserts.
    claimed_by = models.CharField(max_length=300, blank=True, editable=False, default="", db_default="")
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ForecastQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "sign"]
        constraints = [models.UniqueConstraint(fields=["date", "sign"], name="forecast_unique_date_sign")]

    def __str__(self) -> str:
        return f"{self.get_sign_display()} {self.date}"

    @property
    def is_ready(self) -> bool:
        """Whether readers may be shown it: the rule of Forecast.objects.ready(), for one row."""
        return self.status in {self.Status.DRAFT, self.Status.APPROVED}

    def sections_in_order(self, topics: Iterable[str] | None = None) -> list[dict[str, str]]:
        """[{topic, label, text}] of the non-empty sections in the usual topic order; only `topics` when given."""

        sections = self.sections if isinstance(self.sections, dict) else {}
        wanted = set(topics) if topics is not None else set(TOPIC_LABELS)
        return [
            {"topic": topic, "label": label, "text": str(sections[topic])}
            for topic, label in TOPIC_LABELS.items()
            if topic in wanted and str(sections.get(topic) or "").strip()
        ]


class Delivery(models.Model):
    """One reader's email for one local date: at most one, enforced by the database."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        UNKNOWN = "unknown", "Unknown (worker lost while sending)"
        CANCELLED = "cancelled", "Cancelled (reader no longer subscribed)"

    # No index of its own: the unique (subscription, local_date) index serves lookups by
    # subscription, and every status change would write one more index entry.
    subscription = models.ForeignKey(
        "accounts.Subscription", on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    local_date = models.DateField()
    due_at = models.DateTimeField(help_text="When it was due (UTC).")
    # Indexed only where set (delivery_forecast_idx): a queued row has none.
    forecast = models.ForeignKey(
        Forecast, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries", db_index=False
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    ses_message_id = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The worker holding it while queued in a task it received ("worker@host") or while sending
    # ("worker@host/pid"); empty otherwise. A lost holder's deliveries are recovered at once.
    # A database default too: code from before the column (a rolling deploy) still inserts.
    held_by = models.CharField(max_length=300, blank=True, editable=False, default="", db_default="")

    class Meta:
        ordering = ["-local_date", "-due_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "local_date"], name="delivery_unique_subscription_date")
        ]
        indexes = [
            models.Index(fields=["status", "queued_at"], name="delivery_status_queued_idx"),
            models.Index(fields=["local_date", "status"], name="delivery_date_status_idx"),
            # Both only where set (SES's id comes with the send, the forecast too): a delivery is
            # inserted queued and claimed without either, so neither index is written then. Every
            # status change writes each index of the row again (status is indexed: no HOT update).
            models.Index(
                fields=["ses_message_id"], name="delivery_ses_message_idx", condition=~models.Q(ses_message_id="")
            ),
            models.Index(fields=["forecast"], name="delivery_forecast_idx", condition=models.Q(forecast__isnull=False)),
            # Only rows a worker holds right now (a few batches per worker): dispatch and the
            # claim never write it for other rows, and recovery reads it without a table scan.
            models.Index(
                fields=["held_by", "status"],
                name="delivery_held_idx",
                condition=models.Q(status__in=["queued", "sending"]) & ~models.Q(held_by=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.local_date} {self.status}"


class SesEvent(models.Model):
    """One SNS message received at /ses/events/: a log for the admin, and the duplicate check."""

    sns_message_id = models.CharField(max_length=100, unique=True)
    sns_type = models.CharField(max_length=40)
    topic_arn = models.CharField(max_length=256)
    event_type = models.CharField(max_length=40, blank=True, help_text="Bounce, Complaint, Delivery, ...")
    bounce_type = models.CharField(max_length=40, blank=True)
    ses_message_id = models.CharField(max_length=200, blank=True, db_index=True)
    recipients = models.JSONField(default=list, blank=True)
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="ses_events")
    outcome = models.CharField(max_length=255, blank=True, help_text="What the event changed.")
    payload = models.JSONField(default=dict, help_text="The SNS message as received.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "SES event"

    def __str__(self) -> str:
        return f"{self.event_type or self.sns_type} {self.received_at:%Y-%m-%d %H:%M}"


class SendRateWindow(models.Model):
    """One send rate's schedule when no Redis is configured: `stamps` holds its pace's next instant
    (Unix seconds), how many slots were booked and the instants of the last ones (see
    forecasts/sending/ratelimit.py)."""

    key = models.CharField(max_length=100, unique=True)
    stamps = models.JSONField(default=list)

    def __str__(self) -> str:
        return self.key


class WorkerHeartbeat(models.Model):
    """When each Celery worker last said it was alive: written by the worker, read by /healthz."""

    hostname = models.CharField(max_length=255, unique=True, help_text="The worker's node name, e.g. celery@host.")
    beat_at = models.DateTimeField(help_text="Its latest heartbeat (the worker's clock).")
    # Its processes at that beat (main and pool): a pid gone from here was killed or replaced.
    pids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return self.hostname
