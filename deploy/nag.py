"""cdk-nag's AWS Solutions checks, and every finding we accept, each with the reason why.

Synthesis fails on any finding not listed here (CDK policy validation); tests/deploy checks the
validation report is empty and that every acknowledgement below still matches a construct.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

# The construct that runs the Cognito "describe client" call at deploy time (AwsCustomResource's
# singleton Lambda; CDK gives it this fixed id), used to copy the client secret into the app secret.
CUSTOM_RESOURCE = "AWS679f53fac002430cb0da5b7982bd2287"
LAMBDA_BASIC = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)
APP_ROLE_REASON = (
    "The task roles are deploy/iam/*.json, checked by horoscope_site/tests/test_iam.py against the calls the code "
    "makes: {what}"
)

# (construct path inside the stack, finding, reason)
ACKNOWLEDGED: list[tuple[str, str, str]] = [
    (
        "Database/Secret",
        "AwsSolutions-SMG4",
        "Tasks read the database password once at start (DATABASE_URL); rotating it under running tasks would "
        "break their connections. Rotate by hand with a restart of the services (docs/deploy.md).",
    ),
    (
        "DjangoKey",
        "AwsSolutions-SMG4",
        "Django's signing key is rotated by hand with DJANGO_SECRET_KEY_FALLBACKS so old links keep working "
        "(docs/operations.md); an automatic rotation would log every reader out.",
    ),
    (
        "AppSecret",
        "AwsSolutions-SMG4",
        "Holds third-party API keys (OpenAI, Pinecone) that only their providers can issue; the app re-reads the "
        "secret every SECRETS_REFRESH_INTERVAL, so an operator rotates a key with no restart (docs/deploy.md).",
    ),
    (
        "Database",
        "AwsSolutions-RDS11",
        "Another port hides nothing from a scanner inside the VPC; the database is in isolated subnets and its "
        "security group admits the app's tasks only.",
    ),
    (
        "CacheToken",
        "AwsSolutions-SMG4",
        "ElastiCache changes an AUTH token in two steps (ROTATE, then SET once every task has the new one), which a "
        "Secrets Manager rotation cannot pace with the services' restarts; rotate by hand (docs/deploy.md).",
    ),
    (
        "Cache",
        "AwsSolutions-AEC5",
        "Another port hides nothing from a scanner inside the VPC; Redis is in isolated subnets, its security group "
        "admits the app's tasks only, and it asks for TLS and the AUTH token.",
    ),
    (
        CUSTOM_RESOURCE,
        LAMBDA_BASIC,
        "CDK's own deploy-time function (reads the Cognito client secret); the managed policy only lets it write "
        "its logs.",
    ),
    (
        "Compute/WebRole",
        "AwsSolutions-IAM5[Resource::*]",
        APP_ROLE_REASON.format(what="sqs:ListQueues cannot be limited to a resource."),
    ),
    (
        "Compute/WorkerRole",
        "AwsSolutions-IAM5[Resource::*]",
        APP_ROLE_REASON.format(what="sqs:ListQueues and ses:GetAccount cannot be limited to a resource."),
    ),
    *[
        (
            f"Compute/{role}Role",
            "AwsSolutions-IAM5[Resource::arn:aws:ses:us-east-1:<AWS::AccountId>:identity/*]",
            APP_ROLE_REASON.format(
                what="SendEmail is allowed on identities only with ses:FromAddress equal to the site's sender."
            ),
        )
        for role in ("Web", "Worker")
    ],
    *[
        (
            f"Compute/{role}Role",
            "AwsSolutions-IAM5[Resource::arn:aws:ses:us-east-1:<AWS::AccountId>:configuration-set/horoscope-*]",
            APP_ROLE_REASON.format(what="the configuration set is named by the app's horoscope- prefix."),
        )
        for role in ("Web", "Worker")
    ],
    *[
        (
            f"Compute/{role}Role",
            "AwsSolutions-IAM5[Resource::arn:aws:sqs:us-east-1:<AWS::AccountId>:horoscope-*]",
            APP_ROLE_REASON.format(what="kombu finds and may create its queues by the horoscope- prefix."),
        )
        for role in ("Web", "Worker")
    ],
    *[
        (
            f"Compute/{task}Task/ExecutionRole",
            "AwsSolutions-IAM5[Resource::*]",
            "CDK's ECS execution role: ecr:GetAuthorizationToken cannot be limited to a resource.",
        )
        for task in ("Web", "Worker", "Beat")
    ],
    *[
        (
            f"Compute/{task}Task",
            "AwsSolutions-ECS2",
            "The environment holds plain settings only (names, URLs, ARNs); every secret reaches the app from "
            "Secrets Manager (APP_SECRETS_ID, the database secret, the Redis token).",
        )
        for task in ("Web", "Worker", "Beat")
    ],
    (
        "Compute/AccessLogs",
        "AwsSolutions-S1",
        "This bucket receives the load balancer's access logs; logging its own access would only log the logger.",
    ),
    (
        "Compute/LoadBalancer/SecurityGroup",
        "AwsSolutions-EC23",
        "The public website: the load balancer takes https (and http, redirected to https) from anyone.",
    ),
    (
        "Readers",
        "AwsSolutions-COG2",
        "Readers sign in to read a horoscope; a required second factor would turn most of them away. Staff need "
        "TOTP before the admin opens (ADMIN_REQUIRE_MFA), enforced by the app.",
    ),
    (
        "Readers",
        "AwsSolutions-COG8",
        "The Plus plan's threat protection costs per monthly active user; sign-in abuse is limited by the app's "
        "rate limits and the pool's own lockout. Switch the feature plan on when the budget allows.",
    ),
]


# cfn-lint checks we switch off on one resource, with the reason: (construct path, check, reason).
CFN_LINT_IGNORED: list[tuple[str, str, str]] = [
    (
        f"{CUSTOM_RESOURCE}/Resource",
        "W3005",
        "CDK's deploy-time function both references its role and depends on it; the extra DependsOn is harmless.",
    ),
]


def _find(stack: cdk.Stack, path: str):
    construct = stack
    for part in path.split("/"):
        construct = construct.node.find_child(part)
    return construct


def check_with_nag(app: cdk.App, stack: cdk.Stack) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    for path, finding, reason in ACKNOWLEDGED:
        construct = _find(stack, path)
        finding = finding.replace(":us-east-1:", f":{stack.region}:")  # findings name the pinned ARNs
        cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))
    for path, check, reason in CFN_LINT_IGNORED:
        resource = _find(stack, path)
        resource.add_metadata("cfn-lint", {"config": {"ignore_checks": [check], "reason": reason}})
