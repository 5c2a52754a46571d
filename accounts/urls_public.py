from django.urls import path

from accounts import views_public

app_name = "subscription"

urlpatterns = [
    path("unsubscribe/<str:token>/", views_public.unsubscribe, name="unsubscribe"),
    path("subscribe/confirm/<str:token>/", views_public.confirm, name="confirm"),
]
