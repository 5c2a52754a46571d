from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.scheduling import DEFAULT_DELIVERY_TIME, known_time_zones, next_send_at
from forecasts.topics import TOPICS
from forecasts.zodiac import SIGN_CHOICES


def validate_time_zone(value: str) -> None:
    if value not in known_time_zones():
        raise ValidationError(
            "%(value)s is not a known time zone: pick one such as Europe/Paris.", params={"value": value}
        )


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields) -> "User":
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A reader or an admin. The email address is the login identifier."""

    email = models.EmailField("email address", unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin site.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        # Addresses are kept in lower case, as create_user keeps them: allauth looks a login up
        # by the lower-cased address, so one typed "Ann@Example.test" in the admin never logs in.
        self.email = self.email.lower()

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self) -> str:
        return self.first_name or self.email.split("@")[0]


def all_topics() -> list[str]:
    """Every topic (forecasts/topics.py): a new subscription's default."""
    return list(TOPICS)


class Subscription(models.Model):
    """One reader's daily email and what they want in it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        SUPPRESSED = "suppressed", "Suppressed"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="subscription")
    sign = models.CharField(max_length=12, choices=SIGN_CHOICES)
    birth_date = models.DateField(null=True, blank=True)
    birth_time = models.TimeField(null=True, blank=True, help_text="Kept for personal transits later.")
    birth_place = models.CharField(max_length=200, blank=True, help_text="Kept for personal transits later.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    delivery_time = models.TimeField(default=DEFAULT_DELIVERY_TIME, help_text="Local time of the daily email.")
    topics = models.JSONField(default=all_topics, help_text="Life areas the reader wants covered.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_reason = models.CharField(max_length=255, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # When the next email is due, in UTC; None unless active. Computed only by
    # compute_next_send_at(): save() and the dispatcher's bulk update both call it.
    next_send_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Local date of the last claimed delivery, so a change of preferences never sends twice a day.
    last_local_date = models.DateField(null=True, blank=True, editable=False)
    transient_bounce_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The dispatcher's query: active rows whose next_send_at has come.
            models.Index(fields=["next_send_at"], condition=models.Q(status="active"), name="subscription_due_idx"),
            # The admin's filters by status and sign, for the readers who are not active: the
            # dispatcher rewrites every active row each day (next_send_at is indexed, so no HOT
            # update), and an index over active rows too cost it 12% of its time (docs/benchmarks.md).
            models.Index(
                fields=["status", "sign"], name="subscription_inactive_idx", condition=~models.Q(status="active")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.email} ({self.sign}, {self.status})"

    def save(self, *args, **kwargs) -> None:
        next_at = self.compute_next_send_at()
        if next_at is not None and self.next_send_at is not None and self.next_send_at <= timezone.now():
            # Due and not claimed yet (the dispatcher runs every minute, or is catching up after
            # an outage): stay due, or an edit in that gap (topics, a bounce count) would move
            # today's email to tomorrow. The dispatcher works out the date from the current
            # time and zone, and never sends twice for one date.
            next_at = self.next_send_at
        self.next_send_at = next_at
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "next_send_at"}
        super().save(*args, **kwargs)

    def compute_next_send_at(self, now: datetime | None = None) -> datetime | None:
        """When the next email is due, or None when this subscription gets no mail.

        The one rule for next_send_at: save() and the dispatcher (which writes it in bulk after
        claiming a subscription) both call this, on rows with status, time_zone, delivery_time
        and last_local_date loaded.
        """
        if self.status != self.Status.ACTIVE:
            return None
        return next_send_at(now or timezone.now(), self.time_zone, self.delivery_time, self.last_local_date)
