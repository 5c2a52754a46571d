"""The JSON API, mounted at /api/v1/ (see forecasts/web/api.py)."""

from django.urls import path, re_path

from forecasts.web import api

app_name = "api"

urlpatterns = [
    path("horoscope/today", api.my_horoscope_today, name="my-horoscope-today"),
    path("signs/<str:sign>/today", api.sign_today, name="sign-today"),
    re_path(r"^(?P<rest>.*)$", api.not_found, name="not-found"),
]
