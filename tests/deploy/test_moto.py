"""The synthesized template deployed into moto's CloudFormation (server mode), and the app's own
settings resolved against what it created: the web container's environment as ECS holds it,
through deploy/entrypoint.py, into Django's settings in production mode, then a real task
published through kombu onto the stack's queue."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import subprocess
import sys

import pytest

from deploy.config import EXAMPLE_CERTIFICATE
from devtools.servers import REPO_ROOT, base_child_env, moto_server
from tests.deploy.moto_stack import NOT_IN_MOTO, Player, client, deploy, for_moto

SETTINGS_PROBE = """
import hashlib, json, ssl
import django
django.setup()
from django.conf import settings
from horoscope_site.celery import app

def digest(value):
    return hashlib.sha256(value.encode()).hexdigest()

def connection(pool):
    # The client's own reading of the URL: nothing connects (moto has no Redis behind the endpoint).
    made = pool.make_connection()
    return {
        "class": type(made).__name__,
        "host": made.host,
        "port": made.port,
        "password": digest(made.password or ""),
        "certificate_required": made.cert_reqs == ssl.CERT_REQUIRED,
        "check_hostname": made.check_hostname,
    }

def cache_connection():
    from django.core.cache import cache
    return {"backend": settings.CACHES["default"]["BACKEND"], **connection(cache._cache._get_connection_pool(True))}

def send_rate_connection():
    import redis
    from forecasts.sending.ratelimit import send_rate_limiter
    limiter = send_rate_limiter()
    return {"class": type(limiter).__name__, **connection(redis.Redis.from_url(limiter.url).connection_pool)}

def redirects():
    # SecurityMiddleware as it answers the load balancer's plain-http health check and a reader.
    from django.http import HttpResponse
    from django.middleware.security import SecurityMiddleware
    from django.test import RequestFactory
    middleware = SecurityMiddleware(lambda request: HttpResponse())
    factory = RequestFactory(HTTP_HOST=settings.ALLOWED_HOSTS[0])
    seen = {}
    for path, headers in (("/healthz", {}), ("/", {}), ("/", {"HTTP_X_FORWARDED_PROTO": "https"})):
        response = middleware.process_request(factory.get(path, **headers))
        seen[path + (" https" if headers else " http")] = response["Location"] if response else None
    return seen

app.send_task("forecasts.tasks.deploy_probe", kwargs={"from": "tests/deploy"})
print(json.dumps({
    "queue": settings.CELERY_BROKER_TRANSPORT_OPTIONS["queue_name_prefix"] + app.conf.task_default_queue,
    "topics": settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS,
    "configuration_set": settings.AWS_SES_CONFIGURATION_SET,
    "from_email": settings.DEFAULT_FROM_EMAIL,
    "secret_key": digest(settings.SECRET_KEY),
    "cognito_secret": digest(settings.COGNITO_CLIENT_SECRET),
    "database": {k: settings.DATABASES["default"][k] for k in ("HOST", "NAME", "USER")},
    "database_password": digest(settings.DATABASES["default"]["PASSWORD"]),
    "database_options": settings.DATABASES["default"].get("OPTIONS", {}),
    "site_url": settings.SITE_URL,
    "cache": cache_connection(),
    "send_rate_limiter": send_rate_connection(),
    "trusted_proxies": settings.ALLAUTH_TRUSTED_PROXY_COUNT,
    "redirects": redirects(),
}))
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture(scope="module")
def deployed(synthesized):
    template, removed = for_moto(synthesized.template)
    with moto_server() as endpoint:
        # The operator's certificate exists before the stack (context certificate_arn).
        certificate = client("acm", endpoint).request_certificate(DomainName="horoscope.example.com")
        template = json.loads(json.dumps(template).replace(EXAMPLE_CERTIFICATE, certificate["CertificateArn"]))
        created = deploy(template, endpoint)
        player = Player(synthesized.template, created, endpoint)
        player.play()
        yield endpoint, created, player, removed


def test_every_resource_type_is_created_by_moto_or_listed_with_a_reason(synthesized, deployed):
    _endpoint, created, _player, removed = deployed
    for lid, resource in synthesized.template["Resources"].items():
        assert lid in created or resource["Type"] in NOT_IN_MOTO, lid
    assert set(removed.values()) <= set(NOT_IN_MOTO)
    assert all(reason for reason in NOT_IN_MOTO.values())
    kinds = {r["Type"] for lid, r in synthesized.template["Resources"].items() if lid in created}
    for kind in ("AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::ECS::Service", "AWS::RDS::DBInstance", "AWS::IAM::Role"):
        assert kind in kinds


def test_moto_holds_the_queues_topic_services_and_roles(deployed):
    endpoint, _created, _player, _removed = deployed
    queues = sorted(url.rsplit("/", 1)[1] for url in client("sqs", endpoint).list_queues()["QueueUrls"])
    assert queues == ["horoscope-celery", "horoscope-celery-dead-letters"]
    services = client("ecs", endpoint).list_services(cluster="horoscope")["serviceArns"]
    assert sorted(arn.rsplit("/", 1)[1] for arn in services) == ["horoscope-beat", "horoscope-web", "horoscope-worker"]
    policies = []
    iam = client("iam", endpoint)
    for role in iam.list_roles()["Roles"]:
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            # moto's CloudFormation stores the document as Python's repr of the dict.
            policies.append(ast.literal_eval(document) if isinstance(document, str) else document)
    sids = {s.get("Sid") for p in policies for s in p["Statement"]}
    assert {"ReadTheAppSecret", "ConsumeAndEnqueueTasks", "EnqueueTasks", "ReadTheAccountSendRate"} <= sids


def container_as_ecs_runs_it(endpoint: str, player: Player, family: str) -> dict[str, str]:
    """The container's environment from moto's task definition, its secrets read as ECS would."""
    definition = client("ecs", endpoint).describe_task_definition(taskDefinition=family)["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    env = {item["name"]: player.substitute(item["value"]) for item in container["environment"]}
    secrets = client("secretsmanager", endpoint)
    for item in container.get("secrets", []):
        value_from = player.substitute(item["valueFrom"])
        arn, _, rest = value_from.partition(":SecretString:")
        if value_from.count(":") == 6:  # the whole secret: its ARN alone
            arn, key = value_from, None
        elif not rest:  # ECS's short form: <secret arn>:<json key>::
            arn, key = value_from.rstrip(":").rsplit(":", 1)
        else:
            key = rest.split(":")[0]
        text = secrets.get_secret_value(SecretId=arn)["SecretString"]
        env[item["name"]] = text if key is None else json.loads(text)[key]
    return env


def logical_ids(template: dict) -> dict[str, str]:
    """Name (secret, topic) -> logical id."""
    names = {}
    for lid, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        name = props.get("Name") or props.get("TopicName") or props.get("QueueName")
        if isinstance(name, str):
            names[name] = lid
    return names


def run_in_container(endpoint: str, env: dict[str, str], tmp_path, *command: str) -> subprocess.CompletedProcess:
    """`command` through deploy/entrypoint.py with the container's environment, AWS calls going to moto."""
    host_port = endpoint.removeprefix("http://")
    child_env = base_child_env(
        **{
            **env,
            "VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            # The container's sqs:// with moto's address: kombu finds the queue by name as it would on AWS.
            "CELERY_BROKER_URL": f"sqs://testing:testing@{host_port}",
        }
    )
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_RESULT_BACKEND"):  # this process's own, if any
        child_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "deploy.entrypoint", *command],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_apps_settings_resolve_against_what_was_created(synthesized, deployed, tmp_path):
    endpoint, created, player, _removed = deployed
    env = container_as_ecs_runs_it(endpoint, player, "horoscope-web")
    assert env["DJANGO_ENV"] == "production"
    assert env["CELERY_BROKER_URL"] == "sqs://"
    result = run_in_container(endpoint, env, tmp_path, sys.executable, "-c", SETTINGS_PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    ids = logical_ids(synthesized.template)
    topic_arn = created[ids["horoscope-ses-events"]]
    topics = client("sns", endpoint).list_topics()["Topics"]
    assert seen["topics"] == [topic_arn] and {"TopicArn": topic_arn} in topics
    assert topic_arn.endswith(":horoscope-ses-events")
    subscriptions = client("sns", endpoint).list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert [s["Endpoint"] for s in subscriptions] == [seen["site_url"] + "/ses/events/"]

    # The queue Celery publishes to is the stack's, and the task is on it.
    assert seen["queue"] == "horoscope-celery"
    assert created[ids["horoscope-celery"]].rsplit("/", 1)[1] == seen["queue"]  # made by the stack, not kombu
    sqs = client("sqs", endpoint)
    assert [u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]].count("horoscope-celery") == 1
    url = sqs.get_queue_url(QueueName="horoscope-celery")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(base64.b64decode(message["Body"]))  # kombu's SQS envelope
    assert envelope["headers"]["task"] == "forecasts.tasks.deploy_probe"

    # The app secret was found by the ARN the stack gives, and holds the stack's generated keys.
    app_secret = json.loads(player.generated[ids["horoscope/app"]])
    assert seen["secret_key"] == digest(app_secret["DJANGO_SECRET_KEY"])
    assert app_secret["DJANGO_SECRET_KEY"] == player.generated[ids["horoscope/django-key"]]
    assert seen["cognito_secret"] == digest(app_secret["COGNITO_CLIENT_SECRET"])
    assert env["APP_SECRETS_ID"].endswith(":secret:horoscope/app") or ":secret:horoscope/app-" in env["APP_SECRETS_ID"]

    # SES: the configuration set the app names exists, with the site's domain identity on it.
    ses = client("sesv2", endpoint)
    assert seen["configuration_set"] == "horoscope-events"
    ses.get_configuration_set(ConfigurationSetName=seen["configuration_set"])
    identity = ses.get_email_identity(EmailIdentity="horoscope.example.com")
    assert identity["ConfigurationSetName"] == "horoscope-events"
    assert seen["from_email"].endswith("@horoscope.example.com>")

    # The database: the RDS endpoint moto made, the generated user and password (via the entrypoint).
    database = client("rds", endpoint).describe_db_instances(DBInstanceIdentifier="horoscope")["DBInstances"][0]
    generated = json.loads(player.generated[ids["horoscope/database"]])
    assert seen["database"]["HOST"] == database["Endpoint"]["Address"]
    assert seen["database"]["NAME"] == "horoscope"
    assert seen["database"]["USER"] == generated["username"] == "horoscope"
    assert seen["database_password"] == digest(generated["password"])
    assert seen["database_options"].get("sslmode") == "require"

    # Redis: the replication group moto made, over TLS with the generated AUTH token, for both the
    # cache (login limits, staff MFA links) and the shared send rate.
    group = client("elasticache", endpoint).describe_replication_groups(ReplicationGroupId="horoscope-cache")
    (group,) = group["ReplicationGroups"]
    primary = group["NodeGroups"][0]["PrimaryEndpoint"]
    assert group["TransitEncryptionEnabled"] and group["AtRestEncryptionEnabled"] and group["AuthTokenEnabled"]
    token = player.generated[ids["horoscope/cache-token"]]
    expected = {
        "class": "SSLConnection",
        "host": primary["Address"],
        "port": primary["Port"],
        "password": digest(token),
        "certificate_required": True,
        "check_hostname": True,
    }
    assert seen["cache"] == {"backend": "horoscope_site.redis_cache.SharedClientRedisCache", **expected}
    assert seen["send_rate_limiter"] == {"class": "RedisRateLimiter", **expected}

    # Behind the ALB: one proxy's X-Forwarded-For entry, https through X-Forwarded-Proto.
    assert seen["trusted_proxies"] == 1
    assert seen["redirects"] == {
        "/healthz http": None,  # the load balancer's health check, plain http to the task
        "/ http": "https://horoscope.example.com/",
        "/ https": None,
    }


@pytest.mark.parametrize("family", ["horoscope-web", "horoscope-worker", "horoscope-beat"])
def test_every_container_passes_check_deploy_as_the_project_runs_it(deployed, tmp_path, family):
    endpoint, _created, player, _removed = deployed
    env = container_as_ecs_runs_it(endpoint, player, family)
    result = run_in_container(
        endpoint, env, tmp_path, sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "System check identified no issues (0 silenced)." in result.stdout
