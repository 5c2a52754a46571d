"""Login limits behind a load balancer: two real gunicorn workers in production mode, the counters
in a real Redis, each request carrying X-Forwarded-For as an ALB writes it (the client's address
appended on the right). One attacker's failed logins lock out that address only, whatever it
forges on the left of the header, and the limit holds across both workers."""

import re
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from accounts.models import User
from devtools.servers import REPO_ROOT, ManagedProcess, base_child_env, database_url, free_port, wait_for

HOST = "horoscope.example.test"
PASSWORD = "Ecliptic-Lantern-5126"
ATTACKER = "203.0.113.66"
READER = "198.51.100.23"
FAILED_PER_ADDRESS = 10  # allauth's default: 10 failed logins a minute from one address
TOO_MANY = "Too many failed login attempts"
WRONG = "email address and/or password you specified are not correct"


@pytest.fixture
def site(tmp_path, redis_proc, django_db_setup):
    """Two gunicorn workers on DJANGO_ENV=production, with the test database and a Redis cache."""
    from django.conf import settings

    cache_url = f"redis://{redis_proc.host}:{redis_proc.port}/7"
    redis.Redis.from_url(cache_url).flushdb()
    env = base_child_env(
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS=HOST,
        SITE_URL=f"https://{HOST}",
        DEFAULT_FROM_EMAIL=f"Daily Horoscope <daily@{HOST}>",
        DATABASE_URL=database_url(settings.DATABASES["default"]),
        REDIS_URL=cache_url,
        CELERY_BROKER_URL=f"redis://{redis_proc.host}:{redis_proc.port}/8",
        EMAIL_BACKEND="django_ses.SESBackend",
        VAR_DIR=str(tmp_path),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    env.pop("DEBUG", None)
    env.pop("TRUSTED_PROXY_COUNT", None)  # production's default: one proxy, as behind an ALB
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO_ROOT, env=env, check=True
    )
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "horoscope_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--access-logfile", "-", "--access-logformat", "pid=%(p)s %(m)s %(U)s %(s)s",
    ]  # fmt: skip
    server = ManagedProcess(argv, env, tmp_path / "gunicorn.log").start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(base + "/accounts/login/", headers=proxied(READER), timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        try:
            wait_for(up, timeout=60, what="gunicorn")
        except TimeoutError:
            pytest.fail(f"gunicorn did not answer:\n{server.log()[-3000:]}")
        yield base, server, cache_url
    finally:
        server.stop()


def proxied(client_address: str, forged: str = "") -> dict[str, str]:
    """The headers an ALB adds: whatever the client sent in X-Forwarded-For, then its address."""
    chain = f"{forged}, {client_address}" if forged else client_address
    return {"Host": HOST, "X-Forwarded-For": chain, "X-Forwarded-Proto": "https"}


def csrf_token(base: str, client_address: str) -> str:
    """The CSRF cookie a browser gets from the login page; one serves many posts."""
    return requests.get(base + "/accounts/login/", headers=proxied(client_address), timeout=60).cookies["csrftoken"]


def log_in(base: str, client_address: str, email: str, password: str, forged: str = "", token: str = ""):
    token = token or csrf_token(base, client_address)
    return requests.post(
        base + "/accounts/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
        headers={**proxied(client_address, forged), "Referer": f"https://{HOST}/accounts/login/"},
        cookies={"csrftoken": token},  # a plain dict: sent over this loopback http, unlike a Secure cookie jar
        allow_redirects=False,
        timeout=60,
    )


def outcome(response: requests.Response) -> str:
    if response.status_code == 302:
        return "logged in"
    text = response.text
    return "too many" if TOO_MANY in text else "wrong" if WRONG in text else f"other {response.status_code}"


def reader_account(email: str) -> User:
    """A reader whose password hash is cheap to check: PBKDF2 at 1,000 rounds, which the site verifies
    at the rounds stored in the hash. A failed login then costs milliseconds, not the ~1 s of a
    production hash, and the whole spray fits in allauth's one-minute window on a busy machine."""
    user = User.objects.create(
        email=email, password=PBKDF2PasswordHasher().encode(PASSWORD, secrets.token_hex(8), iterations=1000)
    )
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.mark.django_db(transaction=True)
def test_one_attackers_failed_logins_lock_out_only_that_address_across_two_workers(site):
    base, server, cache_url = site
    reader_account("reader@example.test")
    reader_account("attacker@example.test")
    sprayed_accounts = [reader_account(f"member{n}@example.test").email for n in range(FAILED_PER_ADDRESS + 2)]

    token = csrf_token(base, ATTACKER)
    started = time.monotonic()
    # A password spray: one guess at each of many accounts, four at once so both workers take some.
    with ThreadPoolExecutor(max_workers=4) as pool:
        sprayed = list(
            pool.map(
                lambda email: outcome(log_in(base, ATTACKER, email, "not-the-password", token=token)), sprayed_accounts
            )
        )
    elapsed = time.monotonic() - started
    print(f"spray of {len(sprayed)} failed logins over two workers: {elapsed:.1f} s")
    assert elapsed < 55, f"the spray took {elapsed:.0f} s: the one-minute window no longer holds it all"

    # Exactly the per-address allowance, though two processes answered: the count is shared.
    assert sprayed.count("wrong") == FAILED_PER_ADDRESS, sprayed
    assert sprayed.count("too many") == 2, sprayed
    posts_by_worker = set(re.findall(r"pid=<?(\d+)>? POST /accounts/login/ ", server.log()))
    assert len(posts_by_worker) == 2, server.log()[-2000:]
    assert redis.Redis.from_url(cache_url).keys("*allauth:rl:*login_failed*"), "the counters are in Redis"

    # The attacker is locked out, even with a right password and a forged address on the left.
    assert outcome(log_in(base, ATTACKER, "attacker@example.test", PASSWORD)) == "too many"
    assert outcome(log_in(base, ATTACKER, "attacker@example.test", PASSWORD, forged=READER)) == "too many"
    # A reader at another address logs in with their password.
    assert outcome(log_in(base, READER, "reader@example.test", PASSWORD)) == "logged in"
