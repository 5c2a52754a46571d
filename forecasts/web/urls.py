from django.urls import path

from forecasts.sending.ses_events import ses_events
from forecasts.sky.wheel_png import WHEEL_STYLE
from forecasts.web import views

app_name = "forecasts"

urlpatterns = [
    path("", views.home, name="home"),
    path("today/", views.horoscopes_today, name="today"),
    path("glossary/", views.glossary, name="glossary"),
    path("signs/<slug:sign>/", views.sign_page, name="sign"),
    path("signs/<slug:sign>/<str:day>/", views.sign_day, name="sign_day"),
    path(f"sky/wheel-{WHEEL_STYLE}/<str:day>.png", views.sky_wheel_png, name="sky_wheel_png"),
    path("ses/events/", ses_events, name="ses_events"),
]
