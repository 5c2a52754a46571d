"""Clients for the outside services the writing stage calls, built on call (never at import).

`secret()` is how they read a key that may be rotated while the process runs; `openai_client()`
is the one place an OpenAI SDK client is configured (generation and OpenAI embeddings use it).
"""

from django.conf import settings

from horoscope_site.secrets import get_secret


def secret(name: str) -> str:
    """A secret by name: its current value (horoscope_site.secrets.get_secret), else the setting."""
    return get_secret(name) or getattr(settings, name, "") or ""


def openai_client(*, timeout: float | None = None, max_retries: int = 0):
    """An OpenAI SDK client for the configured key and base URL (built on call)."""
    import openai

    return openai.OpenAI(
        api_key=secret("OPENAI_API_KEY"),
        base_url=settings.OPENAI_BASE_URL,
        timeout=timeout if timeout is not None else settings.OPENAI_TIMEOUT,
        max_retries=max_retries,
    )
