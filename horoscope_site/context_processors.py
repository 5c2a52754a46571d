from django.conf import settings
from django.http import HttpRequest

from forecasts.sending.outbox import OUTBOX_BACKEND


def site(request: HttpRequest) -> dict:
    """Values every page template may use."""
    outbox = settings.EMAIL_BACKEND == OUTBOX_BACKEND
    user = getattr(request, "user", None)
    return {
        "COGNITO_ENABLED": settings.COGNITO_ENABLED,
        "CONTACT_EMAIL": settings.CONTACT_EMAIL,
        "OUTBOX_ENABLED": outbox,
        # Who may open /outbox/ (forecasts/web/outbox_views.py): anyone in development, else staff.
        "OUTBOX_VISIBLE": outbox and (settings.DEBUG or bool(user and user.is_staff)),
    }
