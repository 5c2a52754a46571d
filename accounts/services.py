"""Writes on readers and their subscriptions. Views, admin actions, signals and the SES-event
code call these; nothing else changes a subscription's status.

Every status change re-reads the row under a lock (`select_for_update`) and saves it, so it can
never overwrite what the dispatcher wrote meanwhile (`next_send_at`, `last_local_date`), and
`Subscription.save()` recomputes `next_send_at` from the new state.
"""

import logging
from collections.abc import Iterable
from datetime import date, time
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMultiAlternatives
from django.db import models, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Subscription, User, all_topics
from accounts.scheduling import DEFAULT_DELIVERY_TIME

logger = logging.getLogger(__name__)

Status = Subscription.Status


class SubscriptionStateError(ValueError):
    """The requested change does not apply to the subscription's current status."""


def user_email_is_verified(user: User) -> bool:
    """True when the user's login address has been proven (allauth link, or a provider's verified claim)."""
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists()


def _locked(subscription: Subscription) -> Subscription:
    """The subscription's row, re-read and locked until the surrounding transaction ends."""
    return Subscription.objects.select_for_update().get(pk=subscription.pk)


def _set_status(row: Subscription, status: str, reason: str = "") -> None:
    row.status = status
    row.status_reason = reason[:255]
    row.status_changed_at = timezone.now()


def _sync(target: Subscription, source: Subscription) -> Subscription:
    """Copy the saved row's values onto the caller's instance, so it sees what is stored."""
    for field in Subscription._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    return target


def subscription_create(
    *,
    user: User,
    sign: str,
    time_zone: str = "UTC",
    delivery_time: time | None = None,
    topics: Iterable[str] | None = None,
    birth_date: date | None = None,
    birth_time: time | None = None,
    birth_place: str = "",
) -> Subscription:
    """Create the reader's subscription, pending until their address is verified.

    A reader whose address is already verified (a Cognito login with a verified email, or a
    local account after allauth's verification link) is confirmed at once; everyone else is
    confirmed by that link later (see accounts.signals).
    """
    subscription = Subscription(
        user=user,
        sign=sign,
        time_zone=time_zone,
        delivery_time=delivery_time or DEFAULT_DELIVERY_TIME,
        topics=list(topics) if topics is not None else all_topics(),
        birth_date=birth_date,
        birth_time=birth_time,
        birth_place=birth_place,
        status=Status.PENDING,
    )
    subscription.full_clean(exclude=["user"])
    subscription.save()
    if user_email_is_verified(user):
        subscription_confirm(subscription)
    return subscription


def subscription_confirm(subscription: Subscription) -> bool:
    """Pending -> active. Returns whether anything changed (confirming twice is harmless)."""
    with transaction.atomic():
        row = _locked(subscription)
        if row.status != Status.PENDING:
            _sync(subscription, row)
            return False
        _set_status(row, Status.ACTIVE)
        row.confirmed_at = timezone.now()
        row.transient_bounce_count = 0
        row.save()
    _sync(subscription, row)
    return True


def subscription_confirm_if_verified(user: User) -> bool:
    """Confirm the user's pending subscription if their address is now verified."""
    subscription = Subscription.objects.filter(user=user, status=Status.PENDING).first()
    if subscription is None or not user_email_is_verified(user):
        return False
    return subscription_confirm(subscription)


def subscription_confirm_by_token(subscription_id: int, email: str) -> Subscription | None:
    """Confirm from the double opt-in link; the link proves the address, so it is verified too.

    Returns None when the subscription is gone or the user's address changed since the link
    was sent (the link no longer proves anything about the current address).
    """
    subscription = Subscription.objects.select_related("user").filter(pk=subscription_id).first()
    if subscription is None or subscription.user.email.lower() != email.lower():
        return None
    email_address_mark_verified(subscription.user, subscription.user.email)
    subscription_confirm(subscription)
    return subscription


def email_address_mark_verified(user: User, email: str) -> None:
    """Record that `email` is proven to belong to `user` (allauth's EmailAddress)."""
    from allauth.account.models import EmailAddress

    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        EmailAddress.objects.create(
            user=user,
            email=email.lower(),
            verified=True,
            primary=not EmailAddress.objects.filter(user=user, primary=True).exists(),
        )
    elif not address.verified:
        address.verified = True
        address.save(update_fields=["verified"])


def subscription_send_confirmation(subscription: Subscription) -> None:
    """Email the double opt-in link (subject / text / html from templates/emails/)."""
    from accounts.unsubscribe import confirmation_url

    if subscription.status != Status.PENDING:
        raise SubscriptionStateError("Only a subscription waiting for confirmation needs the link.")
    context = {
        "subscription": subscription,
        "user": subscription.user,
        "confirm_url": confirmation_url(subscription),
        "site_url": settings.SITE_URL,
    }
    subject = " ".join(render_to_string("emails/confirm_subscription_subject.txt", context).split())
    text = render_to_string("emails/confirm_subscription.txt", context)
    html = render_to_string("emails/confirm_subscription.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [subscription.user.email])
    message.attach_alternative(html, "text/html")
    message.send()
    logger.info("sent subscription confirmation link for subscription %s", subscription.pk)


PREFERENCE_FIELDS = ("sign", "birth_date", "birth_time", "birth_place", "time_zone", "delivery_time", "topics")


def subscription_update_preferences(subscription: Subscription, **preferences: Any) -> Subscription:
    """Change what the reader wants; next_send_at is recomputed (never a second email the same day)."""
    unknown = set(preferences) - set(PREFERENCE_FIELDS)
    if unknown:
        raise TypeError(f"not preferences: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        row = _locked(subscription)
        for name, value in preferences.items():
            setattr(row, name, list(value) if name == "topics" else value)
        row.full_clean(exclude=["user"])
        row.save()
    return _sync(subscription, row)


def _move(subscription: Subscription, source: str, target: str, refusal: str) -> Subscription:
    """source -> target under the row lock, or SubscriptionStateError(refusal) from any other status."""
    with transaction.atomic():
        row = _locked(subscription)
        if row.status != source:
            raise SubscriptionStateError(refusal)
        _set_status(row, target)
        row.save()
    return _sync(subscription, row)


def subscription_pause(subscription: Subscription) -> Subscription:
    """Active -> paused: no email until resumed."""
    return _move(subscription, Status.ACTIVE, Status.PAUSED, "Only an active subscription can be paused.")


def subscription_resume(subscription: Subscription) -> Subscription:
    """Paused -> active, from the next local delivery time (today's email is not sent twice)."""
    return _move(subscription, Status.PAUSED, Status.ACTIVE, "Only a paused subscription can be resumed.")


def _stop(subscription: Subscription, status: str, reason: str) -> bool:
    """Any status -> a stopped one (unsubscribed, suppressed); False when it already was."""
    with transaction.atomic():
        row = _locked(subscription)
        if row.status == status:
            _sync(subscription, row)
            return False
        _set_status(row, status, reason)
        row.save()
    _sync(subscription, row)
    logger.info("subscription %s %s", subscription.pk, status)
    return True


def subscription_unsubscribe(subscription: Subscription, reason: str = "") -> bool:
    """Stop all email for good (until the reader resubscribes). Idempotent: False if already done."""
    return _stop(subscription, Status.UNSUBSCRIBED, reason)


def subscription_suppress(subscription: Subscription, reason: str) -> bool:
    """Stop email because the address cannot or must not receive it (bounce, complaint).

    Idempotent: False when it was already suppressed. Resubscribing afterwards needs a new
    confirmation through the link, which proves the address works again.
    """
    return _stop(subscription, Status.SUPPRESSED, reason)


def subscription_resubscribe(subscription: Subscription) -> Subscription:
    """Undo an unsubscribe (active at once) or a suppression (pending, confirmation link sent)."""
    with transaction.atomic():
        row = _locked(subscription)
        if row.status == Status.UNSUBSCRIBED and user_email_is_verified(row.user):
            _set_status(row, Status.ACTIVE)
            row.confirmed_at = timezone.now()
        elif row.status in (Status.UNSUBSCRIBED, Status.SUPPRESSED):
            _set_status(row, Status.PENDING)
            row.transient_bounce_count = 0
        else:
            raise SubscriptionStateError("This subscription is not stopped.")
        row.save()
    _sync(subscription, row)
    if subscription.status == Status.PENDING:
        # A link for a change that was rolled back is harmless: it confirms nothing that is not pending.
        subscription_send_confirmation(subscription)
    return subscription


def _plain(value: Any) -> Any:
    """JSON-friendly form of a stored value."""
    if isinstance(value, (date, time)):
        return value.isoformat()
    return value


def _row(instance: models.Model, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Every stored column of a row, by column name, except `exclude`."""
    skipped = set(exclude)
    return {
        field.attname: _plain(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
        if field.name not in skipped and field.attname not in skipped
    }


def _ses_events_of(user: User) -> tuple[models.QuerySet, models.QuerySet]:
    """The email service's events about the person's emails: those linked to their deliveries, and
    those naming one of their emails' SES message ids (an event that came before its delivery was
    linked). Two queries, not one with OR, so that each is a lookup on an index of a large table."""
    from forecasts.models import Delivery, SesEvent

    deliveries = Delivery.objects.filter(subscription__user=user)
    return (
        SesEvent.objects.filter(delivery__in=deliveries),
        SesEvent.objects.filter(ses_message_id__in=deliveries.exclude(ses_message_id="").values("ses_message_id")),
    )


def user_export_data(user: User) -> dict[str, Any]:
    """Everything stored about the person, for the JSON download (no secrets: no password hash, no tokens)."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from allauth.socialaccount.models import SocialAccount
    from allauth.usersessions.models import UserSession

    from forecasts.models import Delivery

    user_data = _row(user, exclude=["password"])
    user_data["has_password"] = user.has_usable_password()
    user_data["groups"] = list(user.groups.values_list("name", flat=True))
    user_data["permissions"] = sorted(user.user_permissions.values_list("codename", flat=True))

    subscription = Subscription.objects.filter(user=user).first()
    deliveries = []
    if subscription is not None:
        for delivery in Delivery.objects.filter(subscription=subscription).select_related("forecast"):
            entry = _row(delivery, exclude=["subscription"])
            forecast = delivery.forecast
            entry["forecast"] = (
                None
                if forecast is None
                else {"date": _plain(forecast.date), "sign": forecast.sign, "headline": forecast.headline}
            )
            deliveries.append(entry)

    sessions = list(UserSession.objects.filter(user=user).order_by("created_at"))
    return {
        "format": "daily-horoscope-export/1",
        "exported_at": timezone.now().isoformat(),
        "user": user_data,
        "subscription": None if subscription is None else _row(subscription, exclude=["user"]),
        "deliveries": deliveries,
        # What each event said of their email; not the raw SNS message, which also carries our AWS
        # account's identifiers and AWS's signature.
        "email_events": [
            _row(event, exclude=["payload", "topic_arn"])
            for event in sorted(
                {event.pk: event for events in _ses_events_of(user) for event in events}.values(),
                key=lambda event: (event.received_at, event.pk),
            )
        ],
        "email_addresses": [
            _row(address, exclude=["user"]) for address in EmailAddress.objects.filter(user=user).order_by("pk")
        ],
        "social_accounts": [
            _row(account, exclude=["user"]) for account in SocialAccount.objects.filter(user=user).order_by("pk")
        ],
        # Session keys are credentials: the export says when and from where, not the key.
        "login_sessions": {
            "count": len(sessions),
            "sessions": [_row(session, exclude=["user", "session_key", "data"]) for session in sessions],
        },
        # Authenticator secrets (TOTP seeds, recovery codes) are credentials: type and dates only.
        "two_factor_authenticators": [
            _row(authenticator, exclude=["user", "data"])
            for authenticator in Authenticator.objects.filter(user=user).order_by("pk")
        ],
        "admin_actions": [
            _row(entry, exclude=["user"]) for entry in LogEntry.objects.filter(user=user).order_by("action_time")
        ],
    }


def session_record(request: HttpRequest, user: User) -> None:
    """Note the session of a login, whoever made it, so that deleting the account can end it.

    allauth notes the logins it makes (UserSession); a login made by Django itself (the
    admin's own, `login()` in code) would otherwise leave a session nobody knows of.
    """
    from allauth.account.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    session = getattr(request, "session", None)
    if session is None or not session.session_key:
        return
    try:
        ip = get_adapter(request).get_client_ip(request)  # the address allauth will note too
    except PermissionDenied:
        ip = "0.0.0.0"  # noqa: S104 - not listening: the address is unknown (a login made in code)
    user_agent = request.META.get("HTTP_USER_AGENT", "")[: UserSession._meta.get_field("user_agent").max_length]
    UserSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={"user": user},
        create_defaults={"user": user, "ip": ip, "user_agent": user_agent},
    )


def user_delete(user: User) -> None:
    """Remove the person: the User row and everything that hangs off it.

    Cascades take the subscription (and its deliveries), email addresses, social accounts
    and tokens, authenticators, tracked sessions and admin log entries. Every session the
    person is logged in with, on any device (see session_record), ends, and admin log lines
    that describe the person (their email in object_repr) are removed too, as are the email
    service's events about their emails (they hold the address; a cascade would only unlink them).
    """
    from allauth.usersessions.models import UserSession

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    with transaction.atomic():
        for session_key in UserSession.objects.filter(user=user).values_list("session_key", flat=True):
            store.delete(session_key)
        subscription_ids = [str(pk) for pk in Subscription.objects.filter(user=user).values_list("pk", flat=True)]
        LogEntry.objects.filter(
            models.Q(content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk))
            | models.Q(content_type=ContentType.objects.get_for_model(Subscription), object_id__in=subscription_ids)
        ).delete()
        for events in _ses_events_of(user):
            events.delete()
        user_id = user.pk
        user.delete()
    logger.info("deleted user %s and their data", user_id)
