"""What an operator chooses for one deployment, read from CDK context (`cdk deploy -c domain=...`).

Every value has an example default so the stack synthesizes with no account and no context (the
tests do that); docs/deploy.md says which ones a real deployment must set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Names the app and the IAM policies in deploy/iam/ already use.
SECRET_NAME = "horoscope/app"  # APP_SECRETS_ID; the policies allow secret:horoscope/app-??????
QUEUE_PREFIX = "horoscope-"  # CELERY_SQS_QUEUE_PREFIX (horoscope_site/config.py default)
CELERY_QUEUE = "celery"  # Celery's default queue; kombu asks SQS for prefix + name
CONFIGURATION_SET = "horoscope-events"  # the policies allow configuration-set/horoscope-*
VISIBILITY_TIMEOUT_S = 900  # CELERY_VISIBILITY_TIMEOUT default: SQS and kombu must agree
WORKER_STOP_TIMEOUT_S = 120  # Fargate's maximum: time for a worker to finish or hand back its batch
CONTAINER_PORT = 8000
CACHE_PORT = 6379  # Redis's own; the security group, not the number, keeps others out

EXAMPLE_DOMAIN = "horoscope.example.com"
EXAMPLE_CERTIFICATE = "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"


class DeployConfigError(ValueError):
    """A context value is missing or malformed; the message names it."""


@dataclass(frozen=True)
class DeployConfig:
    domain: str = EXAMPLE_DOMAIN
    certificate_arn: str = EXAMPLE_CERTIFICATE
    sender_local_part: str = "daily"
    sender_name: str = "Daily Horoscope"
    region: str = "us-east-1"
    image_tag: str = "latest"
    cognito_domain_prefix: str = "horoscope-example"
    alarm_email: str = ""
    web_tasks: int = 2
    workers_min: int = 1
    workers_max: int = 10
    nat_gateways: int = 1
    db_instance_class: str = "t4g.small"
    db_multi_az: bool = True
    # ElastiCache Redis: a primary and a replica in the other zone (docs/deploy.md, "Redis").
    cache_node_type: str = "cache.t4g.micro"
    ses_max_send_rate: str = "0"
    # False for the very first deploy: the image repository exists only once the stack does, so the
    # services start with no tasks until an image is pushed (docs/deploy.md).
    run_tasks: bool = True

    @property
    def site_url(self) -> str:
        return f"https://{self.domain}"

    @property
    def sender_address(self) -> str:
        return f"{self.sender_local_part}@{self.domain}"

    @property
    def from_email(self) -> str:
        return f"{self.sender_name} <{self.sender_address}>"

    @property
    def callback_url(self) -> str:
        return f"{self.site_url}/accounts/amazon-cognito/login/callback/"

    @property
    def ses_events_url(self) -> str:
        return f"{self.site_url}/ses/events/"

    @classmethod
    def from_context(cls, get) -> DeployConfig:
        """Build from a context lookup (`node.try_get_context`); unset keys keep their defaults."""
        values = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = get(name)
            if raw is None:
                continue
            default = field.default
            try:
                if isinstance(default, bool):
                    values[name] = raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes"}
                elif isinstance(default, int):
                    values[name] = int(raw)
                else:
                    values[name] = str(raw)
            except ValueError:
                raise DeployConfigError(f"context {name} must be a whole number, not {raw!r}") from None
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", self.domain):
            raise DeployConfigError(f"context domain must be a lower-case DNS name, not {self.domain!r}")
        if not self.certificate_arn.startswith("arn:aws:acm:"):
            raise DeployConfigError("context certificate_arn must be an ACM certificate ARN (arn:aws:acm:...)")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", self.cognito_domain_prefix):
            raise DeployConfigError("context cognito_domain_prefix must be lower-case letters, digits and dashes")
        if not 1 <= self.workers_min <= self.workers_max:
            raise DeployConfigError("context workers_min must be at least 1 and at most workers_max")
        if not re.fullmatch(r"cache\.[a-z0-9]+\.[a-z0-9]+", self.cache_node_type):
            raise DeployConfigError(
                f"context cache_node_type must be an ElastiCache node type, not {self.cache_node_type!r}"
            )
        if self.web_tasks < 1:
            raise DeployConfigError("context web_tasks must be at least 1")
