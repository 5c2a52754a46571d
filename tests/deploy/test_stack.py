"""The synthesized stack holds every resource issue 15 asks for, with its key properties
(CDK's assertions module on the template `cdk synth` writes; no AWS account)."""

from __future__ import annotations

import json
import shlex

import pytest
from aws_cdk.assertions import Match

from deploy import alarms, iam
from deploy.config import EXAMPLE_CERTIFICATE, DeployConfig, DeployConfigError
from devtools.servers import REPO_ROOT

SITE = "https://horoscope.example.com"


def container(synthesized, name: str) -> dict:
    definitions = synthesized.resources("AWS::ECS::TaskDefinition").values()
    found = [d["Properties"]["ContainerDefinitions"][0] for d in definitions]
    return next(c for c in found if c["Name"] == name)


def environment(synthesized, name: str) -> dict:
    return {item["Name"]: item["Value"] for item in container(synthesized, name)["Environment"]}


def service(synthesized, name: str) -> dict:
    services = synthesized.resources("AWS::ECS::Service").values()
    return next(s["Properties"] for s in services if s["Properties"]["ServiceName"] == f"horoscope-{name}")


def logical_id(synthesized, kind: str, **properties) -> str:
    for lid, resource in synthesized.resources(kind).items():
        if all(resource["Properties"].get(k) == v for k, v in properties.items()):
            return lid
    raise AssertionError(f"no {kind} with {properties}")


# --- network and compute ---


def test_tasks_run_in_private_subnets_without_public_ips(synthesized):
    private = {
        lid
        for lid, subnet in synthesized.resources("AWS::EC2::Subnet").items()
        if subnet["Properties"]["MapPublicIpOnLaunch"] is False
    }
    for name in ("web", "worker", "beat"):
        network = service(synthesized, name)["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert {s["Ref"] for s in network["Subnets"]} <= private
    database = synthesized.one("AWS::RDS::DBSubnetGroup")["Properties"]["SubnetIds"]
    assert {s["Ref"] for s in database} <= private
    assert all("Network" in s["Ref"] and "database" in s["Ref"] for s in database)


def test_web_is_served_over_https_with_the_given_certificate(assertions):
    assertions.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing", "Type": "application"}
    )
    assertions.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "Certificates": [{"CertificateArn": EXAMPLE_CERTIFICATE}]},
    )
    assertions.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 80, "DefaultActions": [Match.object_like({"Type": "redirect"})]},
    )
    assertions.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        # 503 is Django answering with a dependency down: replacing the web task would not help.
        {"HealthCheckPath": "/healthz", "TargetType": "ip", "Port": 8000, "Matcher": {"HttpCode": "200,503"}},
    )


def test_three_services_from_one_image(synthesized):
    web, worker, beat = (service(synthesized, n) for n in ("web", "worker", "beat"))
    assert web["DesiredCount"] == 2 and web["LoadBalancers"][0]["ContainerName"] == "web"
    assert worker["DesiredCount"] == 1
    assert "LoadBalancers" not in worker and "LoadBalancers" not in beat
    images = {json.dumps(container(synthesized, n)["Image"]) for n in ("web", "worker", "beat")}
    assert len(images) == 1
    repository = logical_id(synthesized, "AWS::ECR::Repository", RepositoryName="horoscope")
    (image,) = images
    assert repository in image and ":latest" in image  # the stack's repository, context image_tag
    assert container(synthesized, "web")["Command"][0] == "gunicorn"


def test_exactly_one_beat_even_during_a_deployment(synthesized):
    beat = service(synthesized, "beat")
    assert beat["DesiredCount"] == 1
    # The old beat stops before the new one starts: never two schedulers at once.
    assert beat["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert beat["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    targets = synthesized.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    scaled = {str(t["Properties"]["ResourceId"]) for t in targets}
    assert not any("Beat" in s for s in scaled)


def procfile_command(process: str) -> list[str]:
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name == process:
            words = shlex.split(command)
            return [words[0].removeprefix(".venv/bin/"), *words[1:]]
    raise AssertionError(f"no {process} in Procfile")


def without_log_level(command: list[str]) -> list[str]:
    return [word for word in command if word != "--quiet" and not word.startswith("--loglevel=")]


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_worker_and_beat_run_the_procfile_commands(synthesized, process):
    command = container(synthesized, process)["Command"]
    assert without_log_level(command) == without_log_level(procfile_command(process))
    # The Procfile keeps `make run`'s terminal quiet; CloudWatch keeps each task's receipt (INFO).
    assert "--loglevel=INFO" in command


def test_worker_gets_sigterm_and_the_longest_stop_timeout(synthesized):
    worker = container(synthesized, "worker")
    assert worker["StopTimeout"] == 120  # Fargate's maximum
    assert worker["LinuxParameters"]["InitProcessEnabled"] is True
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert "\nSTOPSIGNAL SIGTERM\n" in dockerfile


def test_workers_scale_on_queue_depth_and_age_of_oldest_task(synthesized):
    target = next(
        t["Properties"]
        for t in synthesized.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
        if "ComputeWorkerService" in str(t["Properties"]["ResourceId"])
    )
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 10)
    metrics = {
        a["Properties"].get("MetricName")
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if any("TaskCountTarget" in str(x) for x in a["Properties"]["AlarmActions"])
    }
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"} <= metrics


# --- data ---


def test_postgres_is_encrypted_backed_up_and_private(assertions):
    assertions.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "StorageEncrypted": True,
            "BackupRetentionPeriod": 14,
            "DeletionProtection": True,
            "PubliclyAccessible": False,
            "MultiAZ": True,
        },
    )
    assertions.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"Name": "horoscope/database", "GenerateSecretString": Match.object_like({"GenerateStringKey": "password"})},
    )


def test_tasks_get_the_database_password_and_redis_token_from_secrets_manager_only(synthesized):
    token = logical_id(synthesized, "AWS::SecretsManager::Secret", Name="horoscope/cache-token")
    for name in ("web", "worker", "beat"):
        secrets = {s["Name"]: s["ValueFrom"] for s in container(synthesized, name)["Secrets"]}
        assert set(secrets) == {"DATABASE_USER", "DATABASE_PASSWORD", "REDIS_AUTH_TOKEN"}
        assert secrets["REDIS_AUTH_TOKEN"] == {"Ref": token}  # the whole secret: the token alone
        env = environment(synthesized, name)
        # DATABASE_URL and REDIS_URL are made by deploy/entrypoint.py from these parts.
        assert not {"DATABASE_PASSWORD", "DATABASE_URL", "REDIS_AUTH_TOKEN", "REDIS_URL"} & set(env)


def test_redis_is_private_encrypted_token_protected_and_replicated(synthesized, assertions):
    token = logical_id(synthesized, "AWS::SecretsManager::Secret", Name="horoscope/cache-token")
    ((lid, group),) = synthesized.resources("AWS::ElastiCache::ReplicationGroup").items()
    props = group["Properties"]
    assert props["Engine"] == "redis" and props["CacheNodeType"] == "cache.t4g.micro"
    assert props["AtRestEncryptionEnabled"] is True and props["TransitEncryptionEnabled"] is True
    # A primary and a replica in the other zone; the replica takes over on its own.
    assert props["NumCacheClusters"] == 2
    assert props["AutomaticFailoverEnabled"] is True and props["MultiAZEnabled"] is True
    # The AUTH token is the generated secret, copied in by CloudFormation (never in the template).
    assert props["AuthToken"] == {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": token}, ":SecretString:::}}"]]}
    assertions.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"Name": "horoscope/cache-token", "GenerateSecretString": Match.object_like({"ExcludePunctuation": True})},
    )
    # In the isolated subnets, as the database.
    subnet_group = synthesized.resources("AWS::ElastiCache::SubnetGroup")[props["CacheSubnetGroupName"]["Ref"]]
    subnets = subnet_group["Properties"]["SubnetIds"]
    assert subnets == synthesized.one("AWS::RDS::DBSubnetGroup")["Properties"]["SubnetIds"]
    assert all("database" in s["Ref"] for s in subnets)

    # Its security group admits Redis from the tasks' security group alone, and sends nothing out.
    (group_ref,) = props["SecurityGroupIds"]
    cache_group = synthesized.resources("AWS::EC2::SecurityGroup")[group_ref["Fn::GetAtt"][0]]["Properties"]
    assert "SecurityGroupIngress" not in cache_group
    assert cache_group["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32"  # CDK's "no egress"
    ingress = [
        r["Properties"]
        for r in synthesized.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == group_ref
    ]
    tasks = service(synthesized, "web")["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    assert [(r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"]) for r in ingress] == [(6379, 6379, tasks[0])]
    assert lid == "Cache"


def test_every_process_is_told_where_redis_is_and_that_one_proxy_is_in_front(synthesized):
    for name in ("web", "worker", "beat"):
        env = environment(synthesized, name)
        assert env["REDIS_HOST"] == {"Fn::GetAtt": ["Cache", "PrimaryEndPoint.Address"]}
        assert env["REDIS_PORT"] == {"Fn::GetAtt": ["Cache", "PrimaryEndPoint.Port"]}
        assert env["TRUSTED_PROXY_COUNT"] == "1"  # the ALB's one X-Forwarded-For entry
        # Django redirects http itself (SecurityMiddleware), as `check --deploy` asks; /healthz is exempt.
        assert "SECURE_SSL_REDIRECT" not in env


def test_task_queue_and_dead_letter_queue(synthesized, assertions):
    dead = logical_id(synthesized, "AWS::SQS::Queue", QueueName="horoscope-celery-dead-letters")
    assertions.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "horoscope-celery",
            "VisibilityTimeout": 900,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dead, "Arn"]}, "maxReceiveCount": 5},
        },
    )


# --- email ---


def test_ses_identity_with_dkim_configuration_set_and_sns_events(synthesized, assertions):
    assertions.has_resource_properties(
        "AWS::SES::EmailIdentity",
        {
            "EmailIdentity": "horoscope.example.com",
            "DkimAttributes": {"SigningEnabled": True},
            "MailFromAttributes": Match.object_like({"MailFromDomain": "mail.horoscope.example.com"}),
        },
    )
    assertions.has_resource_properties("AWS::SES::ConfigurationSet", {"Name": "horoscope-events"})
    topic = logical_id(synthesized, "AWS::SNS::Topic", TopicName="horoscope-ses-events")
    destination = synthesized.one("AWS::SES::ConfigurationSetEventDestination")["Properties"]["EventDestination"]
    assert destination["SnsDestination"]["TopicARN"] == {"Ref": topic}
    assert {"bounce", "complaint", "delivery", "reject"} <= set(destination["MatchingEventTypes"])
    assertions.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "https", "Endpoint": f"{SITE}/ses/events/", "TopicArn": {"Ref": topic}},
    )
    for name in ("web", "worker"):
        env = environment(synthesized, name)
        assert env["AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS"] == {"Ref": topic}
        assert env["EMAIL_BACKEND"] == "django_ses.SESBackend"
        assert env["DEFAULT_FROM_EMAIL"] == "Daily Horoscope <daily@horoscope.example.com>"


# --- sign-in and secrets ---


def test_cognito_pool_client_with_secret_and_hosted_ui(synthesized, assertions):
    pool = logical_id(synthesized, "AWS::Cognito::UserPool", UserPoolName="horoscope-readers")
    assertions.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "UserPoolId": {"Ref": pool},
            "GenerateSecret": True,
            "CallbackURLs": [f"{SITE}/accounts/amazon-cognito/login/callback/"],
            "AllowedOAuthFlows": ["code"],
        },
    )
    assertions.has_resource_properties(
        "AWS::Cognito::UserPoolDomain", {"Domain": "horoscope-example", "UserPoolId": {"Ref": pool}}
    )
    env = environment(synthesized, "web")
    assert env["COGNITO_USER_POOL_ID"] == {"Ref": pool}
    assert "amazoncognito.com" in str(env["COGNITO_DOMAIN"])


def test_the_one_app_secret_has_generated_keys_and_empty_slots(synthesized):
    secret_id = logical_id(synthesized, "AWS::SecretsManager::Secret", Name="horoscope/app")
    text = str(synthesized.template["Resources"][secret_id]["Properties"]["SecretString"])
    for key in ("DJANGO_SECRET_KEY", "COGNITO_CLIENT_SECRET", "OPENAI_API_KEY", "PINECONE_API_KEY"):
        assert f'"{key}"' in text
    assert '"OPENAI_API_KEY":""' in text and '"PINECONE_API_KEY":""' in text  # the operator fills these
    assert "{{resolve:secretsmanager:" in text  # Django's key, generated
    assert "UserPoolClient.ClientSecret" in text  # Cognito's client secret, read at deploy
    for name in ("web", "worker", "beat"):
        assert environment(synthesized, name)["APP_SECRETS_ID"] == {"Ref": secret_id}


# --- least privilege ---


def unpinned(resource):
    if isinstance(resource, list):
        return [unpinned(r) for r in resource]
    if isinstance(resource, dict):
        separator, parts = resource["Fn::Join"]
        resource = separator.join("*" if part == {"Ref": "AWS::AccountId"} else part for part in parts)
    return resource.replace(":us-east-1:", ":*:")


def role_statements(synthesized, description_part: str) -> list[dict]:
    roles = synthesized.resources("AWS::IAM::Role").values()
    role = next(r for r in roles if description_part in r["Properties"].get("Description", ""))
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("role", ["web", "worker"])
def test_task_roles_are_the_tested_policy_files(synthesized, role):
    deployed = role_statements(synthesized, f"deploy/iam/{role}-role.json")
    files = iam.policy_document(role)["Statement"]
    assert [(s["Sid"], s["Action"], s.get("Condition", {}).keys()) for s in deployed] == [
        (s["Sid"], s["Action"], s.get("Condition", {}).keys()) for s in files
    ]
    for mine, tested in zip(deployed, files, strict=True):
        # Only the region and account are pinned: put the file's wildcards back and compare.
        assert unpinned(mine["Resource"]) == tested["Resource"]
        expected_condition = json.loads(
            json.dumps(tested.get("Condition", {})).replace(iam.PLACEHOLDER_SENDER, "daily@horoscope.example.com")
        )
        assert mine.get("Condition", {}) == expected_condition
    # No role in the stack allows more than its file: nothing else is attached to the task roles.
    policies = synthesized.resources("AWS::IAM::Policy").values()
    task_roles = {
        lid
        for lid, r in synthesized.resources("AWS::IAM::Role").items()
        if "deploy/iam/" in r["Properties"].get("Description", "")
    }
    for policy in policies:
        assert not {ref.get("Ref") for ref in policy["Properties"]["Roles"]} & task_roles


def test_services_run_under_the_right_role(synthesized):
    roles = {
        lid: r["Properties"]["Description"].rsplit("/", 1)[1].removesuffix("-role.json")
        for lid, r in synthesized.resources("AWS::IAM::Role").items()
        if "deploy/iam/" in r["Properties"].get("Description", "")
    }
    used = {}
    for definition in synthesized.resources("AWS::ECS::TaskDefinition").values():
        name = definition["Properties"]["ContainerDefinitions"][0]["Name"]
        used[name] = roles[definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]]
    assert used == {"web": "web", "worker": "worker", "beat": "web"}


def test_pinned_resources_keep_the_placeholders_shape():
    config = DeployConfig(domain="stars.example.org")
    statements = iam.deployed_statements("worker", config, "eu-west-1", "123456789012")
    resources = [r for s in statements for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]
    assert "arn:aws:secretsmanager:eu-west-1:123456789012:secret:horoscope/app-??????" in resources
    assert "arn:aws:sqs:eu-west-1:123456789012:horoscope-*" in resources
    assert "*" in resources
    sender = next(s for s in statements if s["Action"] == "ses:SendEmail")["Condition"]["StringEquals"]
    assert sender["ses:FromAddress"] == "daily@stars.example.org"


# --- operations ---


def test_every_log_group_has_a_retention(synthesized):
    groups = synthesized.resources("AWS::Logs::LogGroup").values()
    assert groups and all(g["Properties"].get("RetentionInDays") for g in groups)
    names = {g["Properties"].get("LogGroupName") for g in groups}
    assert {"/horoscope/web", "/horoscope/worker", "/horoscope/beat", "/aws/rds/instance/horoscope/postgresql"} <= names
    for name in ("web", "worker", "beat"):
        assert container(synthesized, name)["LogConfiguration"]["LogDriver"] == "awslogs"


def test_alarms_on_errors_queue_age_heartbeat_and_ses_reputation(synthesized):
    named = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if "AlarmName" in a["Properties"]
    }
    assert named["horoscope-Web5xx"]["MetricName"] == "HTTPCode_Target_5XX_Count"
    assert named["horoscope-OldestTask"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert named["horoscope-SesBounceRate"]["MetricName"] == "Reputation.BounceRate"
    assert named["horoscope-SesBounceRate"]["Threshold"] == 0.02 == alarms.BOUNCE_RATE_LIMIT
    assert named["horoscope-SesComplaintRate"]["Threshold"] == 0.0008
    assert named["horoscope-SesComplaintRate"]["ComparisonOperator"] == "GreaterThanThreshold"
    heartbeat = named["horoscope-WorkerHeartbeat"]
    assert heartbeat["Namespace"] == "AWS/Route53" and heartbeat["TreatMissingData"] == "breaching"
    check = synthesized.one("AWS::Route53::HealthCheck")["Properties"]["HealthCheckConfig"]
    assert (check["Type"], check["ResourcePath"], check["FullyQualifiedDomainName"]) == (
        "HTTPS",
        "/healthz",
        "horoscope.example.com",
    )
    topic = logical_id(synthesized, "AWS::SNS::Topic", TopicName="horoscope-alarms")
    assert all(alarm["AlarmActions"] == [{"Ref": topic}] for alarm in named.values())


def test_outputs_name_what_an_operator_copies(synthesized):
    outputs = synthesized.template["Outputs"]
    for name in (
        "AppSecretArn",
        "SesEventsTopicArn",
        "TaskQueueName",
        "CognitoUserPoolId",
        "CognitoClientId",
        "CognitoDomain",
        "LoadBalancerDns",
        "CacheHost",
        "CacheTokenSecretArn",
        "ImageRepositoryUri",
        "DkimRecord1",
        "DkimRecord3",
    ):
        assert name in outputs, name


# --- context ---


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"domain": "Not A Domain"}, "context domain must be a lower-case DNS name"),
        ({"certificate_arn": "my-cert"}, "context certificate_arn must be an ACM certificate ARN"),
        ({"workers_min": "3", "workers_max": "2"}, "context workers_min must be at least 1"),
        ({"workers_max": "many"}, "context workers_max must be a whole number"),
        ({"cache_node_type": "t4g.micro"}, "context cache_node_type must be an ElastiCache node type"),
    ],
)
def test_bad_context_is_refused_with_one_line(context, message):
    with pytest.raises(DeployConfigError, match=message):
        DeployConfig.from_context(context.get)


def test_first_deploy_starts_no_tasks_until_an_image_is_pushed():
    from deploy.app import build

    _app, stack = build({"run_tasks": "false"})
    compute = stack.compute
    # No synth needed: the services' desired counts are plain numbers on the L1 resources.
    for service in (compute.web, compute.worker, compute.beat):
        assert service.node.default_child.desired_count == 0
