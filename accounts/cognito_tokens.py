"""Checking Amazon Cognito access tokens presented as `Authorization: Bearer ...` on the API.

What an API Gateway Cognito authorizer does: RS256 signature by a key of the user
pool's JWKS, the pool's exact issuer, `token_use` "access", our app client's
`client_id`, and expiry / not-before / issued-at with a small leeway. The key set is
fetched from COGNITO_JWKS_URL and cached for COGNITO_JWKS_CACHE_SECONDS.
"""

from __future__ import annotations

import threading

import jwt
from django.conf import settings

LEEWAY_S = 30
ALGORITHMS = ["RS256"]
JWKS_TIMEOUT_S = 5

_clients: dict[tuple[str, int], jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


class TokenError(Exception):
    """The token is not acceptable; the message is safe to show the caller (no token content)."""


class SigningKeysUnavailable(Exception):
    """The user pool's key set could not be fetched: our problem, not the caller's token."""


def jwks_client() -> jwt.PyJWKClient:
    """The cached key-set client for the configured pool (built on first use)."""
    url = settings.COGNITO_JWKS_URL
    lifespan = max(int(settings.COGNITO_JWKS_CACHE_SECONDS), 1)
    with _clients_lock:
        client = _clients.get((url, lifespan))
        if client is None:
            # The whole key set is cached for `lifespan`; single keys are not cached
            # forever (cache_keys), so a key the pool retires stops working in time.
            client = jwt.PyJWKClient(
                url, cache_jwk_set=True, lifespan=lifespan, cache_keys=False, timeout=JWKS_TIMEOUT_S
            )
            _clients[(url, lifespan)] = client
        return client


def verify_access_token(token: str) -> dict:
    """The claims of a valid Cognito access token for this site.

    Raises TokenError for a token that is not acceptable, SigningKeysUnavailable when
    the key set cannot be fetched (the token may well be fine).
    """
    issuer = settings.COGNITO_ISSUER_URL
    client_id = settings.COGNITO_CLIENT_ID
    if not (issuer and client_id and settings.COGNITO_JWKS_URL):
        raise TokenError("this site does not accept bearer tokens (Cognito is not configured)")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenError("the token is malformed") from None
    if header.get("alg") not in ALGORITHMS:
        raise TokenError("the token is not signed with RS256")
    try:
        key = jwks_client().get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError:
        raise SigningKeysUnavailable("the user pool's signing keys cannot be fetched right now") from None
    except (jwt.PyJWKClientError, jwt.InvalidTokenError):
        raise TokenError("the token is not signed by a key of this user pool") from None
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=ALGORITHMS,
            issuer=issuer,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("the token is not valid yet") from None
    except jwt.InvalidIssuerError:
        raise TokenError("the token was not issued by this user pool") from None
    except jwt.InvalidSignatureError:
        raise TokenError("the token signature is invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"the token has no {exc.claim} claim") from None
    except jwt.InvalidTokenError:
        raise TokenError("the token is invalid") from None
    if claims.get("token_use") != "access":
        raise TokenError("an access token is required")
    if claims.get("client_id") != client_id:
        raise TokenError("the token was issued to another app client")
    return claims
