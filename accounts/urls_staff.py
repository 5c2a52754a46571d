from django.urls import path

from accounts import views_staff

app_name = "staff"

urlpatterns = [
    path("", views_staff.home, name="home"),
    path("two-factor/<str:token>/", views_staff.mfa_setup, name="mfa_setup"),
]
