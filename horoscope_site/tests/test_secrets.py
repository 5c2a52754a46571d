"""Secrets come from one JSON secret in Secrets Manager (moto server), the environment wins,
and no value ever reaches a log line, an error message or an error page."""

import hashlib
import json
import logging
import secrets as pysecrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import environ
import pytest
import time_machine
from django.test import Client
from django.urls import path
from django.views.debug import SafeExceptionReporterFilter

from devtools.servers import REPO_ROOT, base_child_env, free_port, moto_server
from horoscope_site import secrets as app_secrets
from horoscope_site.config import ConfigError
from horoscope_site.security import SecretsCleansingFilter, SecretsMaskingReporter
from tests.support import production

STARS = SafeExceptionReporterFilter.cleansed_substitute


@pytest.fixture(scope="module")
def moto_url():
    with moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def restore_loader_state():
    """Each test loads secrets its own way; put back what settings loaded."""
    saved = dict(vars(app_secrets._state))
    yield
    vars(app_secrets._state).update(saved)


@pytest.fixture
def aws_env(monkeypatch, moto_url):
    """An environment that reaches moto for Secrets Manager and has no secret of its own."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_url)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in (*app_secrets.SECRET_NAMES, "APP_SECRETS_ID", "SECRETS_REFRESH_INTERVAL", "EXTRA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def dummy_values(**extra: str) -> dict[str, str]:
    values = {name: f"{name.lower()}-{pysecrets.token_urlsafe(24)}" for name in app_secrets.SECRET_NAMES}
    values.update(extra)
    return values


def create_secret(moto_url: str, values: dict[str, str]) -> str:
    name = f"horoscope/test-{uuid.uuid4().hex[:10]}"
    sm_client(moto_url).create_secret(Name=name, SecretString=json.dumps(values))
    return name


def sm_client(moto_url: str):
    return boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_url)


def load(production: bool) -> dict[str, str]:
    return app_secrets.load_secrets(environ.Env(), production=production)


def test_secrets_are_read_from_the_json_secret(aws_env, moto_url):
    values = dummy_values(EXTRA_TOKEN="an-extra-value-" + pysecrets.token_hex(8))
    aws_env.setenv("APP_SECRETS_ID", create_secret(moto_url, values))

    loaded = load(production=True)

    assert loaded == values
    assert app_secrets.get_secret("OPENAI_API_KEY") == values["OPENAI_API_KEY"]
    assert app_secrets.get_secret("EXTRA_TOKEN") == values["EXTRA_TOKEN"]
    assert app_secrets.get_secret("NOT_IN_THE_SECRET", default="fallback") == "fallback"


def test_secret_can_be_named_by_its_arn(aws_env, moto_url):
    values = dummy_values()
    name = create_secret(moto_url, values)
    arn = sm_client(moto_url).describe_secret(SecretId=name)["ARN"]
    aws_env.setenv("APP_SECRETS_ID", arn)
    aws_env.delenv("AWS_REGION")  # the region comes from the ARN

    assert load(production=True)["DJANGO_SECRET_KEY"] == values["DJANGO_SECRET_KEY"]


def test_environment_variables_override_the_secret(aws_env, moto_url):
    values = dummy_values()
    aws_env.setenv("APP_SECRETS_ID", create_secret(moto_url, values))
    aws_env.setenv("OPENAI_API_KEY", "sk-from-the-environment-0001")

    loaded = load(production=True)

    assert loaded["OPENAI_API_KEY"] == "sk-from-the-environment-0001"
    assert loaded["PINECONE_API_KEY"] == values["PINECONE_API_KEY"]
    assert app_secrets.get_secret("OPENAI_API_KEY") == "sk-from-the-environment-0001"


def test_development_without_a_secret_uses_the_environment(aws_env):
    aws_env.setenv("PINECONE_API_KEY", "pc-development-key-0001")

    loaded = load(production=False)

    assert loaded["PINECONE_API_KEY"] == "pc-development-key-0001"
    assert loaded["DJANGO_SECRET_KEY"] == ""
    assert app_secrets.get_secret("PINECONE_API_KEY") == "pc-development-key-0001"


def test_missing_required_key_stops_production_naming_the_key_only(aws_env, moto_url):
    values = dummy_values()
    del values["DJANGO_SECRET_KEY"]
    secret_id = create_secret(moto_url, values)
    aws_env.setenv("APP_SECRETS_ID", secret_id)

    with pytest.raises(ConfigError) as raised:
        load(production=True)

    message = str(raised.value)
    assert "DJANGO_SECRET_KEY" in message
    assert secret_id in message
    for value in values.values():
        assert value not in message


def test_missing_optional_keys_are_empty_not_fatal(aws_env, moto_url):
    aws_env.setenv("APP_SECRETS_ID", create_secret(moto_url, {"DJANGO_SECRET_KEY": "k" * 50}))

    loaded = load(production=True)

    assert loaded["OPENAI_API_KEY"] == ""
    assert app_secrets.get_secret("OPENAI_API_KEY") == ""


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [("not json at all", "is not a JSON object"), ('["a list"]', "is not a JSON object"), ('{"A": 1}', "A")],
)
def test_malformed_secret_stops_production(aws_env, moto_url, secret_string, expected):
    name = f"horoscope/test-{uuid.uuid4().hex[:10]}"
    sm_client(moto_url).create_secret(Name=name, SecretString=secret_string)
    aws_env.setenv("APP_SECRETS_ID", name)

    with pytest.raises(ConfigError, match=expected):
        load(production=True)


def test_unknown_secret_stops_production(aws_env):
    aws_env.setenv("APP_SECRETS_ID", "horoscope/does-not-exist")

    with pytest.raises(ConfigError, match="ResourceNotFoundException"):
        load(production=True)


def test_unreachable_secrets_manager_stops_production_with_a_clear_error(aws_env):
    aws_env.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    aws_env.setenv("APP_SECRETS_ID", "horoscope/app")
    aws_env.setenv("DJANGO_SECRET_KEY", "an-environment-key-is-not-enough-when-the-secret-is-named")

    with pytest.raises(ConfigError) as raised:
        load(production=True)

    message = str(raised.value)
    assert "cannot reach Secrets Manager for 'horoscope/app'" in message
    assert "APP_SECRETS_ID" in message
    assert "an-environment-key" not in message


def test_unreachable_secrets_manager_falls_back_to_the_environment_in_development(aws_env, caplog):
    aws_env.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    aws_env.setenv("APP_SECRETS_ID", "horoscope/app")
    aws_env.setenv("OPENAI_API_KEY", "sk-development-fallback-0001")

    with caplog.at_level(logging.WARNING, logger="horoscope_site.secrets"):
        loaded = load(production=False)

    assert loaded["OPENAI_API_KEY"] == "sk-development-fallback-0001"
    warnings = [r.getMessage() for r in caplog.records if r.name == "horoscope_site.secrets"]
    assert any("cannot reach Secrets Manager" in w and "environment variables only" in w for w in warnings)
    assert "sk-development-fallback-0001" not in caplog.text


def test_rotated_key_is_picked_up_after_the_refresh_interval(aws_env, moto_url):
    values = dummy_values()
    secret_id = create_secret(moto_url, values)
    aws_env.setenv("APP_SECRETS_ID", secret_id)
    aws_env.setenv("SECRETS_REFRESH_INTERVAL", "60")
    snapshot = load(production=True)
    assert app_secrets.get_secret("OPENAI_API_KEY") == values["OPENAI_API_KEY"]

    rotated = {**values, "OPENAI_API_KEY": "sk-rotated-" + pysecrets.token_hex(12)}
    sm_client(moto_url).put_secret_value(SecretId=secret_id, SecretString=json.dumps(rotated))

    # Within the interval the cached key is served, without asking AWS.
    calls = record_aws_calls(app_secrets._state.store)
    assert app_secrets.get_secret("OPENAI_API_KEY") == values["OPENAI_API_KEY"]
    assert calls == []

    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61)):
        assert app_secrets.get_secret("OPENAI_API_KEY") == rotated["OPENAI_API_KEY"]
    assert calls == ["DescribeSecret", "GetSecretValue"]
    # The startup snapshot (settings.SECRETS, SECRET_KEY) does not change under a running process.
    assert snapshot["OPENAI_API_KEY"] == values["OPENAI_API_KEY"]


def test_secrets_manager_outage_after_startup_keeps_the_last_value(aws_env):
    with moto_server() as url:
        aws_env.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
        values = dummy_values()
        aws_env.setenv("APP_SECRETS_ID", create_secret(url, values))
        aws_env.setenv("SECRETS_REFRESH_INTERVAL", "0")  # ask AWS on every call
        load(production=True)

    assert app_secrets.get_secret("PINECONE_API_KEY") == values["PINECONE_API_KEY"]


def record_aws_calls(store) -> list[str]:
    """Operation names the store's boto3 client sends from now on (botocore's before-call event)."""
    calls: list[str] = []
    client = store._secret_cache()._client
    client.meta.events.register("before-call.*.*", lambda model, **kwargs: calls.append(model.name))
    return calls


def test_no_value_is_logged_while_loading_and_reading(aws_env, moto_url, caplog):
    values = dummy_values()
    secret_id = create_secret(moto_url, values)
    aws_env.setenv("APP_SECRETS_ID", secret_id)
    aws_env.setenv("SECRETS_REFRESH_INTERVAL", "0")

    with caplog.at_level(logging.DEBUG):
        load(production=True)
        for name in values:
            app_secrets.get_secret(name)
        sm_client(moto_url).delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        # The store now fails to refresh: the cached version is still served.
        assert app_secrets.get_secret("OPENAI_API_KEY") == values["OPENAI_API_KEY"]

    for value in values.values():
        assert value not in caplog.text


def test_store_unreadable_since_startup_warns_once_and_serves_the_startup_value(aws_env, caplog):
    aws_env.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    aws_env.setenv("APP_SECRETS_ID", "horoscope/app")
    aws_env.setenv("OPENAI_API_KEY", "sk-startup-value-0001")

    with caplog.at_level(logging.WARNING, logger="horoscope_site.secrets"):
        load(production=False)
        aws_env.delenv("OPENAI_API_KEY")  # only the startup snapshot knows it now
        assert app_secrets.get_secret("OPENAI_API_KEY") == "sk-startup-value-0001"
        assert app_secrets.get_secret("OPENAI_API_KEY") == "sk-startup-value-0001"

    warnings = [r.getMessage() for r in caplog.records if r.name == "horoscope_site.secrets"]
    assert warnings == [
        "cannot reach Secrets Manager for 'horoscope/app' (EndpointConnectionError); "
        "using environment variables only (development)"
    ]
    assert "sk-startup-value-0001" not in caplog.text


# Error pages: a view that holds a key in a local variable and puts it in its exception.


def leaky_view(request):
    api_key = app_secrets.get_secret("OPENAI_API_KEY")
    raise RuntimeError(f"the provider refused {api_key}")


urlpatterns = [path("leaky", leaky_view)]


@pytest.fixture
def loaded_secrets(aws_env, moto_url):
    values = dummy_values()
    aws_env.setenv("APP_SECRETS_ID", create_secret(moto_url, values))
    loaded = load(production=True)
    return loaded


@pytest.mark.parametrize("debug", [True, False])
def test_error_pages_never_show_a_secret(settings, loaded_secrets, debug):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = debug
    settings.SECRETS = loaded_secrets
    settings.DATABASE_PASSWORD_URL = f"postgres://app:{loaded_secrets['PINECONE_API_KEY']}@db/horoscope"

    response = Client(raise_request_exception=False).get("/leaky")

    assert response.status_code == 500
    html = response.content.decode()
    if debug:
        assert "RuntimeError" in html and "api_key" in html and STARS in html
    for value in loaded_secrets.values():
        assert value not in html


def test_error_mail_text_never_shows_a_secret(settings, rf, loaded_secrets):
    settings.SECRETS = loaded_secrets
    request = rf.get("/leaky")
    try:
        leaky_view(request)
    except RuntimeError:
        exc_info = sys.exc_info()
    text = SecretsMaskingReporter(request, *exc_info).get_traceback_text()
    assert "the provider refused" in text
    for value in loaded_secrets.values():
        assert value not in text


def test_settings_filter_hides_the_secrets_dict_and_copied_values(settings, loaded_secrets):
    settings.SECRETS = loaded_secrets
    settings.BROKER_LOCATION = f"sqs://user:{loaded_secrets['COGNITO_CLIENT_SECRET']}@queue"

    safe = SecretsCleansingFilter().get_safe_settings()

    assert safe["SECRETS"] == STARS
    assert safe["SECRET_KEY"] == STARS
    assert safe["BROKER_LOCATION"] == f"sqs://user:{STARS}@queue"


def test_log_lines_never_show_a_secret_even_when_a_library_logs_one(loaded_secrets):
    # The project's own console handler, as LOGGING configured it.
    handler = next(
        h for h in logging.getLogger().handlers if any(isinstance(f, app_secrets.SecretsLogFilter) for f in h.filters)
    )
    key = loaded_secrets["OPENAI_API_KEY"]
    try:
        raise RuntimeError(f"401 for key {key}")
    except RuntimeError:
        record = logging.LogRecord(
            "openai", logging.ERROR, __file__, 1, "request with %s failed", (key,), sys.exc_info()
        )

    assert handler.filter(record)
    line = handler.format(record)

    assert "request with ******************** failed" in line
    assert "401 for key ********************" in line
    assert key not in line


def test_project_uses_the_masking_reporter_and_filter(settings):
    assert settings.DEFAULT_EXCEPTION_REPORTER == "horoscope_site.security.SecretsMaskingReporter"
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "horoscope_site.security.SecretsCleansingFilter"


# The real entry point: manage.py in production mode reads its Django key from the secret.

# The Django key is left out: it comes from the secret.
PRODUCTION_ENV = {
    **{name: value for name, value in production.PRODUCTION_ENV.items() if name != "DJANGO_SECRET_KEY"},
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def run_manage(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    child_env = base_child_env(**PRODUCTION_ENV, VAR_DIR=str(tmp_path), **env)
    for name in app_secrets.SECRET_NAMES:
        child_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=60
    )


def test_manage_py_in_production_takes_its_django_key_from_the_secret(tmp_path, moto_url):
    values = dummy_values()
    secret_id = create_secret(moto_url, values)
    env = {"APP_SECRETS_ID": secret_id, "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url}

    check = run_manage(tmp_path, "check", **env)
    assert check.returncode == 0, check.stderr

    shell = run_manage(
        tmp_path,
        "shell",
        "-c",
        "import hashlib; from django.conf import settings; "
        "print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest())",
        **env,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.strip().splitlines()[-1] == hashlib.sha256(values["DJANGO_SECRET_KEY"].encode()).hexdigest()


def test_manage_py_in_production_names_the_missing_key_in_one_line(tmp_path, moto_url):
    values = dummy_values()
    del values["DJANGO_SECRET_KEY"]
    secret_id = create_secret(moto_url, values)

    result = run_manage(tmp_path, "check", APP_SECRETS_ID=secret_id, AWS_ENDPOINT_URL_SECRETS_MANAGER=moto_url)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: DJANGO_SECRET_KEY is required")
    assert secret_id in lines[0]
    for value in values.values():
        assert value not in result.stderr + result.stdout


@pytest.mark.parametrize("keep_old_key", [True, False])
def test_an_unsubscribe_link_signed_before_a_key_rotation_works_while_the_old_key_is_a_fallback(
    tmp_path, moto_url, keep_old_key
):
    from django.core import signing

    from accounts.unsubscribe import UNSUBSCRIBE_SALT

    old_key, new_key = (f"django-key-{pysecrets.token_urlsafe(32)}" for _ in range(2))
    old_link_token = signing.dumps(4242, key=old_key, salt=UNSUBSCRIBE_SALT)  # in an email sent last year
    fallbacks = f"django-key-older-{pysecrets.token_urlsafe(32)}  {old_key}" if keep_old_key else ""
    values = dummy_values(DJANGO_SECRET_KEY=new_key, DJANGO_SECRET_KEY_FALLBACKS=fallbacks)
    env = {"APP_SECRETS_ID": create_secret(moto_url, values), "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_url}

    shell = run_manage(
        tmp_path,
        "shell",
        "-c",
        "from accounts.unsubscribe import subscription_id_from_unsubscribe_token as read; "
        f"from django.conf import settings; print(read({old_link_token!r}), len(settings.SECRET_KEY_FALLBACKS))",
        **env,
    )

    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.strip().splitlines()[-1] == ("4242 2" if keep_old_key else "None 0")


def test_each_fallback_key_is_masked_on_its_own(settings, aws_env, moto_url):
    first, second = (f"retired-key-{pysecrets.token_urlsafe(24)}" for _ in range(2))
    values = dummy_values(DJANGO_SECRET_KEY_FALLBACKS=f"{first} {second}")
    aws_env.setenv("APP_SECRETS_ID", create_secret(moto_url, values))
    load(production=True)

    masked = app_secrets.mask_secret_values(f"signed with {second}, not {first}")

    assert first not in masked and second not in masked and masked.count(app_secrets.MASK) == 2
