from django.urls import path

from accounts import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("preferences/", views.preferences, name="preferences"),
    path("subscription/pause/", views.pause, name="pause"),
    path("subscription/resume/", views.resume, name="resume"),
    path("subscription/unsubscribe/", views.unsubscribe, name="unsubscribe"),
    path("subscription/resubscribe/", views.resubscribe, name="resubscribe"),
    path("subscription/resend-confirmation/", views.resend_confirmation, name="resend_confirmation"),
    path("account/", views.account, name="account"),
    path("account/export/", views.export, name="export"),
    path("account/delete/", views.delete, name="delete"),
]
