"""ECS on Fargate: one image run three ways (web behind the load balancer, autoscaled workers,
exactly one beat), with the task roles built from deploy/iam/*.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from deploy import iam as policies
from deploy.config import CACHE_PORT, CONTAINER_PORT, QUEUE_PREFIX, VISIBILITY_TIMEOUT_S, WORKER_STOP_TIMEOUT_S

if TYPE_CHECKING:
    from deploy.stack import HoroscopeStack

# The Procfile's worker and beat commands, run from the image's PATH instead of .venv/bin.
WORKER_COMMAND = ["celery", "-A", "horoscope_site", "worker", "--loglevel=INFO", "--concurrency=2"]
BEAT_COMMAND = ["celery", "-A", "horoscope_site", "beat", "--loglevel=INFO"]
# Production serves with gunicorn (the Procfile's runserver is for one machine).
WEB_COMMAND = [
    "gunicorn",
    "horoscope_site.wsgi:application",
    f"--bind=0.0.0.0:{CONTAINER_PORT}",
    "--workers=3",
    "--timeout=30",
    "--access-logfile=-",
]
# Which task role (deploy/iam/<role>-role.json) each process runs under. Beat only publishes tasks,
# as the web does; the worker role would also let it consume tasks and read the account's send rate.
ROLE_OF = {"web": "web", "worker": "worker", "beat": "web"}


def container_environment(stack: HoroscopeStack) -> dict[str, str]:
    """Plain settings for every container; secrets come from Secrets Manager (container_secrets)."""
    config = stack.config
    return {
        "DJANGO_ENV": "production",
        "ALLOWED_HOSTS": config.domain,
        "CSRF_TRUSTED_ORIGINS": config.site_url,
        "SITE_URL": config.site_url,
        # The load balancer adds one X-Forwarded-For entry: allauth's login limits count the reader's address.
        "TRUSTED_PROXY_COUNT": "1",
        "APP_SECRETS_ID": stack.app_secret.secret_arn,
        "AWS_REGION": stack.region,
        "CELERY_BROKER_URL": "sqs://",
        "CELERY_SQS_QUEUE_PREFIX": QUEUE_PREFIX,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S),
        "EMAIL_BACKEND": "django_ses.SESBackend",
        "AWS_SES_REGION_NAME": stack.region,
        "AWS_SES_CONFIGURATION_SET": stack.configuration_set.configuration_set_name,
        "DEFAULT_FROM_EMAIL": config.from_email,
        "SES_MAX_SEND_RATE": config.ses_max_send_rate,
        "AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS": stack.events_topic.topic_arn,
        "COGNITO_DOMAIN": stack.hosted_ui.base_url(),
        "COGNITO_CLIENT_ID": stack.app_client.user_pool_client_id,
        "COGNITO_USER_POOL_ID": stack.user_pool.user_pool_id,
        "COGNITO_REGION": stack.region,
        # deploy/entrypoint.py joins these and the secret's username and password into DATABASE_URL.
        "DATABASE_HOST": stack.database.db_instance_endpoint_address,
        "DATABASE_PORT": stack.database.db_instance_endpoint_port,
        "DATABASE_NAME": "horoscope",
        # ... and these and the secret's token into REDIS_URL (rediss://, TLS).
        "REDIS_HOST": stack.cache.attr_primary_end_point_address,
        "REDIS_PORT": stack.cache.attr_primary_end_point_port,
    }


def container_secrets(stack: HoroscopeStack) -> dict[str, ecs.Secret]:
    secret = stack.database.secret
    return {
        "DATABASE_USER": ecs.Secret.from_secrets_manager(secret, "username"),
        "DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(secret, "password"),
        "REDIS_AUTH_TOKEN": ecs.Secret.from_secrets_manager(stack.cache_token),
    }


class Compute(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stack: HoroscopeStack) -> None:
        super().__init__(scope, construct_id)
        self.stack = stack
        config = stack.config
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=stack.vpc,
            cluster_name="horoscope",
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.task_security_group = ec2.SecurityGroup(
            self, "Tasks", vpc=stack.vpc, description="Web, worker and beat tasks", allow_all_outbound=True
        )
        stack.database_security_group.add_ingress_rule(
            self.task_security_group, ec2.Port.tcp(5432), "PostgreSQL from the app's tasks"
        )
        stack.cache_security_group.add_ingress_rule(
            self.task_security_group, ec2.Port.tcp(CACHE_PORT), "Redis (TLS) from the app's tasks"
        )
        self.image = ecs.ContainerImage.from_ecr_repository(stack.repository, tag=config.image_tag)
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.task_roles = {
            role: iam.Role(
                self,
                f"{role.capitalize()}Role",
                assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                description=f"Daily Horoscope {role} tasks: deploy/iam/{role}-role.json",
                inline_policies={
                    "app": policies.policy_for(role, config, stack.region, stack.account),
                },
            )
            for role in ("web", "worker")
        }
        self.task_definitions = {
            "web": self._task("web", WEB_COMMAND, cpu=512, memory=1024, port=CONTAINER_PORT),
            "worker": self._task("worker", WORKER_COMMAND, cpu=1024, memory=2048, stop_timeout=WORKER_STOP_TIMEOUT_S),
            "beat": self._task("beat", BEAT_COMMAND, cpu=256, memory=512),
        }
        self.load_balancer, self.target_group = self._load_balancer()
        running = 1 if config.run_tasks else 0
        self.web = self._service("web", desired=config.web_tasks * running)
        self.web.attach_to_application_target_group(self.target_group)
        web_scaling = self.web.auto_scale_task_count(
            min_capacity=config.web_tasks * running, max_capacity=config.web_tasks * 4
        )
        web_scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        self.worker = self._service("worker", desired=config.workers_min * running)
        self._scale_workers(config.workers_min * running, config.workers_max)
        # Exactly one beat: never two during a deployment (the old one stops before the new starts).
        self.beat = self._service("beat", desired=running, min_healthy_percent=0, max_healthy_percent=100)

    def _task(
        self, name: str, command: list[str], *, cpu: int, memory: int, port: int | None = None, stop_timeout=None
    ) -> ecs.FargateTaskDefinition:
        stack = self.stack
        log_group = logs.LogGroup(
            self,
            f"{name.capitalize()}Logs",
            log_group_name=f"/horoscope/{name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_groups[name] = log_group
        definition = ecs.FargateTaskDefinition(
            self,
            f"{name.capitalize()}Task",
            family=f"horoscope-{name}",
            cpu=cpu,
            memory_limit_mib=memory,
            task_role=self.task_roles[ROLE_OF[name]],
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        definition.add_container(
            name,
            image=self.image,
            command=command,
            environment=container_environment(stack),
            secrets=container_secrets(stack),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=log_group),
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            # SIGTERM (the image's STOPSIGNAL) starts Celery's warm shutdown; the stop timeout is how
            # long ECS waits before SIGKILL. acks_late hands an unfinished batch back to the queue.
            stop_timeout=Duration.seconds(stop_timeout) if stop_timeout else None,
            # tini as PID 1 passes SIGTERM on to the process and reaps its children.
            linux_parameters=ecs.LinuxParameters(self, f"{name.capitalize()}Init", init_process_enabled=True),
        )
        return definition

    def _load_balancer(self) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationTargetGroup]:
        stack = self.stack
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=stack.vpc, internet_facing=True, drop_invalid_header_fields=True
        )
        balancer.log_access_logs(access_logs, prefix="alb")
        certificate = acm.Certificate.from_certificate_arn(self, "Certificate", stack.config.certificate_arn)
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "Web",
            vpc=stack.vpc,
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path="/healthz",
                # 503 means Django answers but the database, broker or a worker is down: replacing
                # the web task would not help, so the load balancer keeps it. The worker heartbeat
                # alarm (deploy/alarms.py) watches for 200.
                healthy_http_codes="200,503",
                interval=Duration.seconds(30),
                timeout=Duration.seconds(10),
            ),
        )
        balancer.add_listener(
            "Https",
            port=443,
            certificates=[certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            default_target_groups=[target_group],
        )
        balancer.add_redirect(source_port=80, target_port=443)
        self.task_security_group.add_ingress_rule(
            balancer.connections.security_groups[0], ec2.Port.tcp(CONTAINER_PORT), "Web from the load balancer"
        )
        return balancer, target_group

    def _service(
        self, name: str, *, desired: int, min_healthy_percent: int = 100, max_healthy_percent: int = 200
    ) -> ecs.FargateService:
        return ecs.FargateService(
            self,
            f"{name.capitalize()}Service",
            service_name=f"horoscope-{name}",
            cluster=self.cluster,
            task_definition=self.task_definitions[name],
            desired_count=desired,
            min_healthy_percent=min_healthy_percent,
            max_healthy_percent=max_healthy_percent,
            assign_public_ip=False,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.task_security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=Duration.seconds(120) if name == "web" else None,
            enable_execute_command=False,
        )

    def _scale_workers(self, low: int, high: int) -> None:
        scaling = self.worker.auto_scale_task_count(min_capacity=low, max_capacity=high)
        queue = self.stack.queue
        # Waiting batches: one more worker per 20 waiting send tasks (2,000 emails at 100 a batch).
        scaling.scale_on_metric(
            "QueueDepth",
            metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
            scaling_steps=[
                appscaling.ScalingInterval(upper=0, change=-1),
                appscaling.ScalingInterval(lower=20, change=1),
                appscaling.ScalingInterval(lower=100, change=3),
                appscaling.ScalingInterval(lower=500, change=6),
            ],
            cooldown=Duration.minutes(2),
        )
        # Tasks waiting long means the workers are behind even if few are queued (slow sends).
        scaling.scale_on_metric(
            "OldestTaskAge",
            metric=queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1)),
            scaling_steps=[
                appscaling.ScalingInterval(lower=120, change=2),
                appscaling.ScalingInterval(lower=600, change=5),
            ],
            cooldown=Duration.minutes(2),
        )
