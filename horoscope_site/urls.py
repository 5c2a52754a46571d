from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from accounts.views_public import signup
from horoscope_site.health import healthz

# The admin's own login form would skip allauth's second-factor step: send staff through allauth.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("", include("forecasts.web.urls")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Before allauth's own, so ?sign= can choose the sign (a sign page's call to subscribe).
    path("accounts/signup/", signup, name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("forecasts.web.urls_api")),
    path("portal/", include("accounts.urls")),
    path("", include("accounts.urls_public")),
    path("staff/", include("accounts.urls_staff")),
]
if not settings.PRODUCTION:
    # The local outbox holds every reader's email: one machine only, never routed in production.
    urlpatterns.append(path("outbox/", include("forecasts.web.urls_outbox")))
