from django.contrib import admin
from django.urls import include, path

from horoscope_site.health import healthz

urlpatterns = [
    path("", include("forecasts.urls")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("outbox/", include("forecasts.urls_outbox")),
]
