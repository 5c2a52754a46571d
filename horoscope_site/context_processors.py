from django.conf import settings
from django.http import HttpRequest

from forecasts.outbox import OUTBOX_BACKEND


def site(request: HttpRequest) -> dict:
    """Values every page template may use."""
    return {
        "COGNITO_ENABLED": settings.COGNITO_ENABLED,
        "OUTBOX_ENABLED": settings.EMAIL_BACKEND == OUTBOX_BACKEND,
    }
