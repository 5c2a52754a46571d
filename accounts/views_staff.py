"""Staff pages outside the admin: where staff land after logging in, and the set-up link."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import staff_mfa
from horoscope_site.security import has_mfa_session


def _next_url(request: HttpRequest) -> str:
    candidate = request.GET.get("next") or request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(candidate, {request.get_host()}, require_https=request.is_secure()):
        return candidate
    return reverse("admin:index")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Where staff land after logging in: the admin, or what to do before it opens."""
    user = request.user
    if not user.is_staff:
        return redirect("portal:dashboard")
    next_url = _next_url(request)
    has_factor = staff_mfa.staff_has_second_factor(user)
    if not settings.ADMIN_REQUIRE_MFA or has_mfa_session(request):
        return HttpResponseRedirect(next_url)
    context = {
        "has_factor": has_factor,
        "may_enrol": staff_mfa.session_may_enrol(request),
        "reauthenticate_url": f"{reverse('mfa_reauthenticate')}?{urlencode({'next': next_url})}",
        "command": f"python manage.py staff_mfa_link {user.email}",
    }
    return render(request, "staff/home.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def mfa_setup(request: HttpRequest, token: str) -> HttpResponse:
    """The one-time set-up link. GET explains (mail scanners follow links); POST spends it."""
    try:
        link = staff_mfa.setup_token_check(token)
    except staff_mfa.LinkError as error:
        return render(request, "staff/link_invalid.html", {"reason": str(error)}, status=400)
    if not request.user.is_authenticated:
        login = f"{reverse('account_login')}?{urlencode({'next': request.get_full_path()})}"
        return render(request, "staff/mfa_setup.html", {"link": link, "login_url": login})
    if request.user.pk != link.user.pk:
        return render(
            request, "staff/link_invalid.html", {"reason": "This link was made for another account."}, status=400
        )
    if request.method == "POST":
        try:
            staff_mfa.setup_link_redeem(request, link)
        except staff_mfa.LinkError as error:
            return render(request, "staff/link_invalid.html", {"reason": str(error)}, status=400)
        query = urlencode({"next": reverse("admin:index")})
        return redirect(f"{reverse('mfa_activate_totp')}?{query}")
    return render(request, "staff/mfa_setup.html", {"link": link, "token": token})
