from django.urls import path

from forecasts import views

app_name = "forecasts"

urlpatterns = [
    path("", views.home, name="home"),
]
