"""Pages reached without logging in: one-click unsubscribe, the opt-in link, and sign-up with
a sign chosen in advance (a sign page's call to subscribe)."""

from allauth.account.views import SignupView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.models import Subscription
from accounts.unsubscribe import confirmation_from_token, subscription_id_from_unsubscribe_token
from forecasts.zodiac import SIGNS_BY_SLUG


class SignupWithSignView(SignupView):
    """allauth's sign-up, with ?sign=<slug> choosing the sign (an unknown one is ignored)."""

    def get_initial(self) -> dict:
        initial = super().get_initial()
        sign = self.request.GET.get("sign", "")
        if sign in SIGNS_BY_SLUG:
            initial["sign"] = sign
        return initial


signup = SignupWithSignView.as_view()


def _invalid_link(request: HttpRequest, what: str) -> HttpResponse:
    return render(request, "accounts/link_invalid.html", {"what": what}, status=400)


# RFC 8058: mail providers POST "List-Unsubscribe=One-Click" with no cookies and no CSRF
# token, so the view is CSRF-exempt; the signed token is what authorises it.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation (link scanners follow links); POST unsubscribes at once."""
    subscription_id = subscription_id_from_unsubscribe_token(token)
    if subscription_id is None:
        return _invalid_link(request, "unsubscribe")
    subscription = Subscription.objects.select_related("user").filter(pk=subscription_id).first()
    if subscription is None:
        # A genuine link whose account was deleted: nothing is left to unsubscribe.
        return render(request, "accounts/unsubscribe_done.html", {"subscription": None})
    if request.method == "POST":
        services.subscription_unsubscribe(subscription, reason="one-click unsubscribe link")
        return render(request, "accounts/unsubscribe_done.html", {"subscription": subscription})
    return render(request, "accounts/unsubscribe_confirm.html", {"subscription": subscription, "token": token})


@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The double opt-in link: GET asks, POST confirms (a scanner's GET must not subscribe anyone)."""
    found = confirmation_from_token(token)
    if found is None:
        return _invalid_link(request, "confirm")
    subscription_id, email = found
    if request.method == "POST":
        subscription = services.subscription_confirm_by_token(subscription_id, email)
        if subscription is None:
            return _invalid_link(request, "confirm")
        return render(request, "accounts/confirm_done.html", {"subscription": subscription})
    return render(request, "accounts/confirm.html", {"email": email, "token": token})
