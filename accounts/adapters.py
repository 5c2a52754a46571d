"""allauth adapters: what differs from allauth's defaults for this site."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request):
        """Staff land on the admin, or on what to do before it opens; readers on their dashboard."""
        if request.user.is_staff:
            return reverse("staff:home")
        return super().get_login_redirect_url(request)

    def get_client_ip(self, request):
        """A forwarded-for chain shorter than TRUSTED_PROXY_COUNT did not come through our proxies:
        refuse it (403) rather than let allauth's configuration error answer 500."""
        try:
            return super().get_client_ip(request)
        except ImproperlyConfigured:
            raise PermissionDenied("This request did not come through the site's proxy") from None


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request, provider, client_id=None):
        """A provider without a configured app (Cognito switched off) is a 404, not a server error."""
        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist:
            raise Http404("This way of signing in is not switched on.") from None
