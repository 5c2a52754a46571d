"""allauth adapters: what differs from allauth's defaults for this site."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.utils import is_mfa_enabled
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.http import Http404


class AccountAdapter(DefaultAccountAdapter):
    def confirm_email(self, request, email_address) -> bool:
        """Confirming a new address logs the reader in, in whatever browser opens the link.

        allauth alone logs in only the browser that signed up, so a reader who opens the email on
        their phone lands on a login form. The link is sent only to that address, confirms with a
        POST (mail scanners only GET), and logs in once: allauth calls this only while the address
        is unverified, so an old link never logs anyone in again. Accounts with a second factor
        still log in through it.
        """
        confirmed = super().confirm_email(request, email_address)
        user = email_address.user
        if confirmed and not request.user.is_authenticated and user.is_active and not is_mfa_enabled(user):
            self.login(request, user)
        return confirmed


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request, provider, client_id=None):
        """A provider without a configured app (Cognito switched off) is a 404, not a server error."""
        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist:
            raise Http404("This way of signing in is not switched on.") from None
