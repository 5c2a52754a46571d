from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from horoscope_site import pages
from horoscope_site.health import healthz

# The admin's own login form would skip allauth's second-factor step: send staff through allauth.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("", include("forecasts.web.urls")),
    path("healthz", healthz, name="healthz"),
    path("about/", pages.about, name="about"),
    path("privacy/", pages.privacy, name="privacy"),
    path("terms/", pages.terms, name="terms"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("forecasts.web.urls_api")),
    path("portal/", include("accounts.urls")),
    path("", include("accounts.urls_public")),
    path("staff/", include("accounts.urls_staff")),
]
if not settings.PRODUCTION:
    # The local outbox holds every reader's email: one machine only, never routed in production.
    urlpatterns.append(path("outbox/", include("forecasts.web.urls_outbox")))
