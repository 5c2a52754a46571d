"""allauth events that move a subscription along: a verified address confirms it."""

import time

from allauth.account.signals import email_confirmed
from allauth.socialaccount.signals import social_account_added
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from accounts import services

LOGIN_AT_SESSION_KEY = "accounts_login_at"


@receiver(email_confirmed, dispatch_uid="accounts_email_confirmed")
def on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    """allauth's verification link doubles as the subscription's opt-in confirmation."""
    services.subscription_confirm_if_verified(email_address.user)


@receiver(social_account_added, dispatch_uid="accounts_social_account_added")
def on_social_account_added(sender, request, sociallogin, **kwargs) -> None:
    """A Cognito login joined an existing account by email: the provider verified that address.

    allauth only joins on a verified provider email and wipes the local password if the local
    address was never verified (nobody else can hold the account), so the address is proven.
    """
    user = sociallogin.user
    for address in sociallogin.email_addresses:
        if address.verified and address.email.lower() == user.email.lower():
            services.email_address_mark_verified(user, user.email)


@receiver(user_logged_in, dispatch_uid="accounts_user_logged_in")
def on_user_logged_in(sender, request, user, **kwargs) -> None:
    """Remember when this session last logged in (fresh logins re-authenticate deletion), and
    note the session so that deleting the account ends it."""
    if request is not None and hasattr(request, "session"):
        request.session[LOGIN_AT_SESSION_KEY] = time.time()
        services.session_record(request, user)
    services.subscription_confirm_if_verified(user)
