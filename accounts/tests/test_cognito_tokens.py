"""Each check of an access token on its own: a token right in everything but one thing is refused.

The tokens are signed here with a key of our own, published as a JWKS over local HTTP (what a
user pool serves), so a test can make exactly one claim wrong; moto's tokens differ from each
other in several things at once.
"""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts import cognito_tokens
from accounts.cognito_tokens import TokenError, verify_access_token

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_OurPool"
CLIENT_ID = "our-app-client"
KID = "pool-key-1"


class _Jwks(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture(scope="module")
def pool_key():
    """The pool's signing key; its public half served as a JWKS on 127.0.0.1."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    handler = type("Jwks", (_Jwks,), {"body": json.dumps({"keys": [{**jwk, "kid": KID, "alg": "RS256"}]}).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield key, f"http://127.0.0.1:{server.server_address[1]}/{uuid.uuid4().hex}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def our_pool(settings, pool_key):
    settings.COGNITO_ISSUER_URL = ISSUER
    settings.COGNITO_CLIENT_ID = CLIENT_ID
    settings.COGNITO_JWKS_URL = pool_key[1]
    settings.COGNITO_JWKS_CACHE_SECONDS = 3600
    cognito_tokens._clients.clear()


def access_token(pool_key, **changes) -> str:
    """A Cognito access token right in every way, but for `changes` (None removes a claim)."""
    now = int(time.time())
    claims = {
        "sub": "5e1f4c2a-0000-4000-8000-000000000001",
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "username": "5e1f4c2a-0000-4000-8000-000000000001",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, pool_key[0], algorithm="RS256", headers={"kid": KID})


def test_a_token_right_in_everything_is_accepted(pool_key):
    assert verify_access_token(access_token(pool_key))["client_id"] == CLIENT_ID


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_OtherPool"}, "not issued by this user pool"),
        ({"iss": ISSUER + "/"}, "not issued by this user pool"),
        ({"iss": None}, "no iss claim"),
    ],
    ids=["another-pool", "near-miss", "missing"],
)
def test_the_issuer_check_alone_refuses_a_token(pool_key, changes, reason):
    with pytest.raises(TokenError, match=reason):
        verify_access_token(access_token(pool_key, **changes))


@pytest.mark.parametrize(
    "client_id",
    ["another-app-client", CLIENT_ID.upper(), "", None],
    ids=["another-client", "other-case", "empty", "missing"],
)
def test_the_client_id_check_alone_refuses_a_token(pool_key, client_id):
    with pytest.raises(TokenError, match="another app client"):
        verify_access_token(access_token(pool_key, client_id=client_id))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [{"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_OtherPool"}, {"client_id": "another-app-client"}],
    ids=["issuer", "client_id"],
)
def test_the_api_answers_401_to_a_token_wrong_in_one_check_only(client, pool_key, changes):
    right = client.get("/api/v1/horoscope/today", HTTP_AUTHORIZATION=f"Bearer {access_token(pool_key)}")
    assert right.status_code == 404  # accepted; no reader has this sub

    response = client.get("/api/v1/horoscope/today", HTTP_AUTHORIZATION=f"Bearer {access_token(pool_key, **changes)}")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
