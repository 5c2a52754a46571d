"""The JSON API: bearer tokens issued by a real Cognito stand-in (moto server), checked against its JWKS."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import boto3
import jwt
import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from accounts.models import Subscription, User
from devtools.servers import free_port, moto_server
from forecasts.models import Forecast
from forecasts.tests.factories import sample_facts
from forecasts.web.api import reader_for_claims

REGION = "us-east-1"
PASSWORD = "Correct-Horse-9-Battery"
URL = "/api/v1/horoscope/today"


@pytest.fixture(scope="module")
def cognito():
    """A moto server with two user pools: ours (two app clients) and a stranger's."""
    with moto_server() as url:
        idp = boto3.client("cognito-idp", region_name=REGION, endpoint_url=url)

        def pool_with_client(name):
            pool_id = idp.create_user_pool(PoolName=name, UsernameAttributes=["email"])["UserPool"]["Id"]
            return pool_id, new_client(pool_id)

        def new_client(pool_id):
            return idp.create_user_pool_client(
                UserPoolId=pool_id,
                ClientName=f"client-{uuid.uuid4().hex[:6]}",
                ExplicitAuthFlows=[
                    "ALLOW_USER_PASSWORD_AUTH",
                    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                    "ALLOW_REFRESH_TOKEN_AUTH",
                ],
            )["UserPoolClient"]["ClientId"]

        pool_id, client_id = pool_with_client("horoscope")
        other_client_id = new_client(pool_id)
        stranger_pool_id, stranger_client_id = pool_with_client("someone-else")
        yield {
            "url": url,
            "idp": idp,
            "pool_id": pool_id,
            "client_id": client_id,
            "other_client_id": other_client_id,
            "stranger_pool_id": stranger_pool_id,
            "stranger_client_id": stranger_client_id,
        }


@pytest.fixture(autouse=True)
def cognito_settings(settings, cognito):
    settings.COGNITO_CLIENT_ID = cognito["client_id"]
    # moto writes the issuer a real pool would; its keys are served on loopback.
    settings.COGNITO_ISSUER_URL = f"https://cognito-idp.{REGION}.amazonaws.com/{cognito['pool_id']}"
    settings.COGNITO_JWKS_URL = f"{cognito['url']}/{cognito['pool_id']}/.well-known/jwks.json"
    settings.COGNITO_JWKS_CACHE_SECONDS = 3600


def cognito_user(cognito, email: str, pool_id: str | None = None) -> str:
    """Create a confirmed user in the pool; returns its `sub`."""
    idp = cognito["idp"]
    pool_id = pool_id or cognito["pool_id"]
    idp.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True)
    attributes = idp.admin_get_user(UserPoolId=pool_id, Username=email)["UserAttributes"]
    return next(a["Value"] for a in attributes if a["Name"] == "sub")


def tokens(cognito, email: str, client_id: str | None = None) -> dict:
    """Sign in with USER_PASSWORD_AUTH as a mobile app would: AccessToken, IdToken."""
    result = cognito["idp"].initiate_auth(
        ClientId=client_id or cognito["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )
    return result["AuthenticationResult"]


def reader(cognito, sign="leo", time_zone="UTC", **subscription) -> tuple[User, str]:
    email = f"reader-{uuid.uuid4().hex[:8]}@example.com"
    sub = cognito_user(cognito, email)
    user = User.objects.create_user(email=email)
    SocialAccount.objects.create(user=user, provider="amazon_cognito", uid=sub)
    Subscription.objects.create(user=user, sign=sign, time_zone=time_zone, status="active", **subscription)
    return user, email


def forecast(sign="leo", day=None, status=Forecast.Status.APPROVED, **fields) -> Forecast:
    values = {
        "headline": "A good day to finish what you started",
        "overview": "The Moon meets Saturn: patience pays.",
        "sections": {"love": "Say it plainly.", "career": "Ship the small thing.", "money": "Wait a day."},
    }
    values.update(fields)
    return Forecast.objects.create(date=day or datetime.now(UTC).date(), sign=sign, status=status, **values)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def get(client, token: str | None = None, url: str = URL, **headers):
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.get(url, **headers)


def assert_invalid_token(response, *fragments: str):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid_token"
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="')
    for fragment in fragments:
        assert fragment in body["detail"]
        assert fragment in challenge
    assert response["Cache-Control"] == "no-store"


# --- The reader's own forecast ---


@pytest.mark.django_db
def test_valid_access_token_returns_the_readers_forecast_for_their_local_date(client, cognito):
    # 12:00 UTC on 10 March is already 11 March at UTC+14 (Kiribati).
    with time_machine.travel(datetime(2026, 3, 10, 12, 0, tzinfo=UTC)):
        _, email = reader(cognito, sign="leo", time_zone="Pacific/Kiritimati", topics=["love", "money"])
        forecast(sign="leo", day=date(2026, 3, 10), headline="Yesterday's news")
        forecast(sign="leo", day=date(2026, 3, 11))
        forecast(sign="virgo", day=date(2026, 3, 11), headline="Someone else's day")

        response = get(client, tokens(cognito, email)["AccessToken"])

    assert response.status_code == 200, response.content
    assert response.json() == {
        "date": "2026-03-11",
        "sign": {"slug": "leo", "name": "Leo", "glyph": "\u264c\ufe0e"},
        "time_zone": "Pacific/Kiritimati",
        "headline": "A good day to finish what you started",
        "overview": "The Moon meets Saturn: patience pays.",
        "sections": {"love": "Say it plainly.", "money": "Wait a day."},
        "do": "",
        "dont": "",
        "sky": [],
    }
    assert response["Cache-Control"] == "no-store"
    assert "Authorization" in response["Vary"]


@pytest.mark.django_db
def test_reader_is_found_by_sub_only_never_by_the_username_claim(client, cognito):
    # Mallory's pool user name is Alice's sub: the token names Alice in `username`, Mallory in `sub`.
    alice, _ = reader(cognito, sign="aries")
    alice_sub = SocialAccount.objects.get(user=alice).uid
    mallory_email = f"mallory-{uuid.uuid4().hex[:8]}@example.com"
    mallory_sub = cognito_user(cognito, mallory_email)
    forecast(sign="aries")

    assert reader_for_claims({"sub": alice_sub, "username": "anything"}) == alice
    assert reader_for_claims({"sub": mallory_sub, "username": alice_sub}) is None
    assert reader_for_claims({"sub": "", "username": alice_sub}) is None
    assert reader_for_claims({"username": alice_sub}) is None

    claims = jwt.decode(tokens(cognito, mallory_email)["AccessToken"], options={"verify_signature": False})
    assert claims["sub"] == mallory_sub
    response = get(client, tokens(cognito, mallory_email)["AccessToken"])
    assert response.status_code == 404  # Mallory has no reader account; Alice's forecast is not hers


@pytest.mark.django_db
def test_verified_email_claim_finds_a_local_account_only_when_both_are_verified():
    user = User.objects.create_user(email="local@example.com")
    EmailAddress.objects.create(user=user, email="local@example.com", verified=True, primary=True)
    unverified = User.objects.create_user(email="unproven@example.com")
    EmailAddress.objects.create(user=unverified, email="unproven@example.com", verified=False, primary=True)

    assert reader_for_claims({"sub": "x", "email": "LOCAL@example.com", "email_verified": "true"}) == user
    assert reader_for_claims({"sub": "x", "email": "local@example.com"}) is None
    assert reader_for_claims({"sub": "x", "email": "local@example.com", "email_verified": False}) is None
    assert reader_for_claims({"sub": "x", "email": "unproven@example.com", "email_verified": True}) is None


@pytest.mark.django_db
def test_expired_token_is_refused(client, cognito):
    _, email = reader(cognito)
    start = datetime.now(UTC)
    with time_machine.travel(start):
        access = tokens(cognito, email)["AccessToken"]
    exp = jwt.decode(access, options={"verify_signature": False})["exp"]
    within_leeway = datetime.fromtimestamp(exp, UTC) + timedelta(seconds=5)
    # The token lives an hour: started after 23:00 UTC, the reader's date when it expires is tomorrow.
    forecast(day=within_leeway.date())

    with time_machine.travel(within_leeway, tick=False):
        assert get(client, access).status_code == 200  # within the leeway
    with time_machine.travel(datetime.fromtimestamp(exp, UTC) + timedelta(minutes=2)):
        assert_invalid_token(get(client, access), "expired")


@pytest.mark.django_db
def test_token_of_another_user_pool_is_refused(client, cognito):
    email = f"stranger-{uuid.uuid4().hex[:8]}@example.com"
    cognito_user(cognito, email, pool_id=cognito["stranger_pool_id"])
    access = tokens(cognito, email, client_id=cognito["stranger_client_id"])["AccessToken"]

    assert_invalid_token(get(client, access), "not issued by this user pool")


@pytest.mark.django_db
def test_token_for_another_app_client_is_refused(client, cognito):
    _, email = reader(cognito)
    access = tokens(cognito, email, client_id=cognito["other_client_id"])["AccessToken"]

    assert_invalid_token(get(client, access), "another app client")


@pytest.mark.django_db
def test_tampered_tokens_are_refused(client, cognito):
    _, email = reader(cognito)
    forecast()
    header, payload, signature = tokens(cognito, email)["AccessToken"].split(".")

    flipped = signature[:-6] + ("AAAAAA" if signature[-6:] != "AAAAAA" else "BBBBBB")
    assert_invalid_token(get(client, f"{header}.{payload}.{flipped}"), "signature is invalid")

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 86400
    forged = b64(json.dumps(claims).encode())
    assert_invalid_token(get(client, f"{header}.{forged}.{signature}"), "signature is invalid")


@pytest.mark.django_db
def test_unsigned_and_algorithm_confusion_tokens_are_refused(client, cognito, settings):
    _, email = reader(cognito)
    claims = jwt.decode(tokens(cognito, email)["AccessToken"], options={"verify_signature": False})

    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"kid": "dummy"})
    assert_invalid_token(get(client, unsigned), "RS256")

    # The classic confusion: HMAC-sign with the pool's public key, hoping it is used as a secret.
    public_pem = (
        jwt.PyJWKClient(settings.COGNITO_JWKS_URL)
        .get_signing_keys()[0]
        .key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = b64(json.dumps({"alg": "HS256", "kid": "dummy"}).encode()) + "." + b64(json.dumps(claims).encode())
    mac = b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    assert_invalid_token(get(client, f"{signing_input}.{mac}"), "RS256")


@pytest.mark.django_db
def test_unknown_key_id_is_refused(client, cognito):
    _, email = reader(cognito)
    _, payload, signature = tokens(cognito, email)["AccessToken"].split(".")
    other_header = b64(b'{"kid":"not-a-pool-key","alg":"RS256"}')

    assert_invalid_token(get(client, f"{other_header}.{payload}.{signature}"), "not signed by a key of this user pool")


@pytest.mark.django_db
def test_id_token_is_not_an_access_token(client, cognito):
    _, email = reader(cognito)

    assert_invalid_token(get(client, tokens(cognito, email)["IdToken"]), "access token is required")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        (None, "Authorization: Bearer"),
        ("", "Authorization: Bearer"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer two words", "must be 'Bearer <token>'"),
        ('Bearer "quoted"', "must be 'Bearer <token>'"),
        ("Bearer not-a-jwt", "malformed"),
        ("Bearer a.b.c", "malformed"),
    ],
)
def test_missing_or_malformed_authorization_is_refused(client, authorization, fragment):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    assert_invalid_token(client.get(URL, **headers), fragment)


@pytest.mark.django_db
def test_signed_in_reader_without_a_subscription_gets_404_and_one_being_written_a_503(client, cognito, monkeypatch):
    email = f"nosub-{uuid.uuid4().hex[:8]}@example.com"
    sub = cognito_user(cognito, email)
    user = User.objects.create_user(email=email)
    SocialAccount.objects.create(user=user, provider="amazon_cognito", uid=sub)
    access = tokens(cognito, email)["AccessToken"]

    response = get(client, access)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "subscription" in response.json()["detail"]

    Subscription.objects.create(user=user, sign="pisces", status="active")
    # Another worker is writing it right now (a fresh claim): retry shortly, not "there is none".
    monkeypatch.setattr("forecasts.web.readings.ON_DEMAND_WAIT_SECONDS", 0.2)
    forecast(sign="pisces", status=Forecast.Status.GENERATING, claimed_at=timezone.now())
    response = get(client, access)
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert "being written" in response.json()["detail"]


@pytest.mark.django_db
def test_valid_token_of_a_stranger_to_the_site_gets_404(client, cognito):
    email = f"unknown-{uuid.uuid4().hex[:8]}@example.com"
    cognito_user(cognito, email)

    response = get(client, tokens(cognito, email)["AccessToken"])

    assert response.status_code == 404
    assert "No reader account" in response.json()["detail"]


@pytest.mark.django_db
def test_signing_keys_are_fetched_once_and_cached(client, cognito, monkeypatch):
    from accounts import cognito_tokens

    cognito_tokens._clients.clear()
    fetches = []
    original = jwt.PyJWKClient.fetch_data
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda self: fetches.append(1) or original(self))
    _, email = reader(cognito)
    forecast()
    access = tokens(cognito, email)["AccessToken"]

    for _ in range(3):
        assert get(client, access).status_code == 200
    assert len(fetches) == 1


@pytest.mark.django_db
def test_unreachable_key_set_is_a_503_not_a_bad_token(client, cognito, settings):
    settings.COGNITO_JWKS_URL = f"http://127.0.0.1:{free_port()}/{cognito['pool_id']}/.well-known/jwks.json"
    _, email = reader(cognito)

    response = get(client, tokens(cognito, email)["AccessToken"])

    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"] == "30"


@pytest.mark.django_db
def test_without_cognito_configured_no_token_is_accepted(client, cognito, settings):
    _, email = reader(cognito)
    access = tokens(cognito, email)["AccessToken"]
    settings.COGNITO_CLIENT_ID = ""

    assert_invalid_token(get(client, access), "does not accept bearer tokens")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_other_methods_get_a_json_405(client, method):
    for url in (URL, "/api/v1/signs/leo/today"):
        response = getattr(client, method)(url)
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
        assert response["Allow"] == "GET, HEAD"


# --- A sign's forecast, public ---


@pytest.mark.django_db
def test_sign_forecast_for_today_in_utc_is_public(client):
    with time_machine.travel(datetime(2026, 7, 1, 23, 30, tzinfo=UTC)):
        forecast(sign="cancer", day=date(2026, 7, 1))
        forecast(sign="cancer", day=date(2026, 7, 2), headline="Tomorrow")

        response = client.get("/api/v1/signs/cancer/today")

    assert response.status_code == 200
    body = response.json()
    assert body["date"] == "2026-07-01"
    assert body["sign"]["name"] == "Cancer"
    assert set(body["sections"]) == {"love", "career", "money"}
    assert response["Cache-Control"].startswith("public")


@pytest.mark.django_db
def test_time_slots_are_written_in_the_asked_zone_and_a_bad_zone_is_a_400(client):
    text = "The Moon enters Leo [[at:2026-07-01T14:10Z]], and the mood lifts."
    facts = sample_facts(date(2026, 7, 1))  # the Moon enters Leo at 14:32 UTC, Venus trine Mars exact at 03:10
    forecast(sign="cancer", day=date(2026, 7, 1), overview=text, advice={"do": "Rest.", "dont": "Rush."}, facts=facts)

    paris = client.get("/api/v1/signs/cancer/today", {"date": "2026-07-01", "tz": "Europe/Paris"}).json()
    assert paris["overview"] == "The Moon enters Leo at 16:10 this afternoon, and the mood lifts."
    assert (paris["time_zone"], paris["do"], paris["dont"]) == ("Europe/Paris", "Rest.", "Rush.")
    # In the sky: the visitor's whole local day (Paris: 22:00 UTC the day before to 22:00 UTC).
    assert "The Moon enters Leo, your 5th house (romance), at 16:32 (Europe/Paris)." in paris["sky"]
    assert any(line.startswith("Venus trine Mars (exact at 05:10") for line in paris["sky"])
    la = client.get("/api/v1/signs/cancer/today", {"date": "2026-07-01", "tz": "America/Los_Angeles"}).json()
    assert not any(line.startswith("Venus trine Mars") for line in la["sky"])  # 20:10 the day before there
    utc = client.get("/api/v1/signs/cancer/today", {"date": "2026-07-01"}).json()
    assert utc["overview"] == "The Moon enters Leo at 14:10 UTC, and the mood lifts."  # no zone given: named

    response = client.get("/api/v1/signs/cancer/today", {"date": "2026-07-01", "tz": "Mars/Olympus"})
    assert response.status_code == 400 and "IANA time zone" in response.json()["detail"]


@pytest.mark.django_db
def test_sign_forecast_for_a_given_date(client):
    forecast(sign="gemini", day=date(2025, 12, 24), status=Forecast.Status.DRAFT, headline="Christmas Eve")

    response = client.get("/api/v1/signs/gemini/today", {"date": "2025-12-24"})

    assert response.status_code == 200
    assert response.json()["headline"] == "Christmas Eve"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [
        "",
        "tomorrow",
        "2025-13-01",
        "2025-02-30",
        "2025-2-3",
        "20250203",
        "2025-02-03T00:00",
        "２０２５-０２-０３",
        "2025-02-03\n",
    ],
)
def test_bad_date_is_a_400_with_a_reason(client, raw):
    response = client.get("/api/v1/signs/leo/today", {"date": raw})

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "detail": "date must be a calendar date written YYYY-MM-DD."}


@pytest.mark.django_db
def test_unknown_sign_and_unwritten_or_future_forecasts_are_404(client):
    forecast(sign="libra", day=datetime.now(UTC).date() + timedelta(days=2))
    forecast(sign="scorpio", day=date(2024, 5, 1), status=Forecast.Status.FAILED)

    for url, params in [
        ("/api/v1/signs/ophiuchus/today", {}),
        ("/api/v1/signs/LEO/today", {}),
        ("/api/v1/signs/leo/today", {"date": "2024-05-01"}),
        ("/api/v1/signs/scorpio/today", {"date": "2024-05-01"}),
        ("/api/v1/signs/libra/today", {"date": (datetime.now(UTC).date() + timedelta(days=2)).isoformat()}),
        ("/api/v1/nothing-here", {}),
        ("/api/v1/signs/leo/yesterday", {}),
    ]:
        response = client.get(url, params)
        assert response.status_code == 404, url
        assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_today_without_a_date_is_today_in_the_asked_zone(client):
    # 23:30 UTC on 1 July: still 1 July in UTC and Honolulu, already 2 July at UTC+14 (Kiribati).
    with time_machine.travel(datetime(2026, 7, 1, 23, 30, tzinfo=UTC)):
        forecast(sign="cancer", day=date(2026, 7, 1), headline="The first")
        forecast(sign="cancer", day=date(2026, 7, 2), headline="The second")

        in_utc = client.get("/api/v1/signs/cancer/today").json()
        in_kiribati = client.get("/api/v1/signs/cancer/today", {"tz": "Pacific/Kiritimati"}).json()
        in_honolulu = client.get("/api/v1/signs/cancer/today", {"tz": "Pacific/Honolulu"}).json()

    assert (in_utc["date"], in_utc["headline"]) == ("2026-07-01", "The first")
    assert (in_kiribati["date"], in_kiribati["headline"]) == ("2026-07-02", "The second")
    assert (in_honolulu["date"], in_honolulu["headline"]) == ("2026-07-01", "The first")


@pytest.mark.django_db
def test_todays_missing_forecast_is_written_on_demand_and_a_past_one_is_said_plainly(client):
    with time_machine.travel(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), tick=True):
        response = client.get("/api/v1/signs/aries/today")
        past = client.get("/api/v1/signs/aries/today", {"date": "2026-06-01"})
        future = client.get("/api/v1/signs/aries/today", {"date": "2026-07-03"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["date"] == "2026-07-01" and body["headline"] and body["overview"]
    written = Forecast.objects.get(sign="aries", date=date(2026, 7, 1))
    assert written.is_ready and body["headline"] == written.headline
    assert (past.status_code, past.json()["detail"]) == (404, "No forecast was written for Aries on 2026-06-01.")
    assert future.status_code == 404 and "has not begun anywhere on Earth" in future.json()["detail"]
    assert not Forecast.objects.filter(date__in=[date(2026, 6, 1), date(2026, 7, 3)]).exists()
