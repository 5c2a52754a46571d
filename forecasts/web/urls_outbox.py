from django.urls import path

from forecasts.web import outbox_views as views_outbox

app_name = "outbox"

urlpatterns = [
    path("", views_outbox.outbox_list, name="list"),
    path("<str:name>/", views_outbox.outbox_detail, name="detail"),
    path("<str:name>/html", views_outbox.outbox_html, name="html"),
]
