from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from horoscope_site.health import healthz

urlpatterns = [
    path("", include("forecasts.urls")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
]

if settings.EMAIL_BACKEND == "forecasts.outbox.OutboxEmailBackend":
    urlpatterns += [path("outbox/", include("forecasts.urls_outbox"))]
