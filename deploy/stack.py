"""The whole Daily Horoscope deployment as one CloudFormation stack.

Network -> data (PostgreSQL, ElastiCache Redis, SQS) -> email (SES, SNS events) -> sign-in (Cognito) -> secrets ->
compute (deploy/services.py) -> alarms (deploy/alarms.py). Names the app relies on live in
deploy/config.py; the stack's outputs are what deploy/production.env.example asks for.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from deploy import alarms, services
from deploy.config import (
    CACHE_PORT,
    CELERY_QUEUE,
    CONFIGURATION_SET,
    QUEUE_PREFIX,
    SECRET_NAME,
    VISIBILITY_TIMEOUT_S,
    DeployConfig,
)

LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class HoroscopeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config

        self.vpc = self._network()
        self.database = self._database()
        self.cache, self.cache_token = self._cache()
        self.queue, self.dead_letters = self._queues()
        self.events_topic, self.configuration_set, self.identity = self._email()
        self.user_pool, self.app_client, self.hosted_ui = self._sign_in()
        self.app_secret = self._app_secret()
        self.repository = ecr.Repository(
            self,
            "Images",
            repository_name="horoscope",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.compute = services.Compute(self, "Compute", stack=self)
        self.alarms = alarms.Alarms(self, "Alarms", stack=self)
        self._outputs()

    # --- network ---

    def _network(self) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Network",
            max_azs=2,
            nat_gateways=self.config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="tasks", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        return vpc

    # --- data ---

    def _database(self) -> rds.DatabaseInstance:
        self.database_security_group = ec2.SecurityGroup(
            self, "DatabaseAccess", vpc=self.vpc, description="PostgreSQL: reachable from the app tasks only"
        )
        # Made here rather than by RDS so it has a retention (cloudwatch_logs_retention would add a Lambda).
        log_group = logs.LogGroup(
            self,
            "DatabaseLogs",
            log_group_name="/aws/rds/instance/horoscope/postgresql",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        database = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_6),
            instance_type=ec2.InstanceType(self.config.db_instance_class),
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.database_security_group],
            database_name="horoscope",
            credentials=rds.Credentials.from_generated_secret("horoscope", secret_name="horoscope/database"),
            storage_encrypted=True,
            allocated_storage=20,
            max_allocated_storage=200,
            multi_az=self.config.db_multi_az,
            backup_retention=Duration.days(14),
            delete_automated_backups=False,
            deletion_protection=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
            instance_identifier="horoscope",
            cloudwatch_logs_exports=["postgresql"],
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
        )
        database.node.add_dependency(log_group)
        return database

    def _cache(self) -> tuple[elasticache.CfnReplicationGroup, secretsmanager.Secret]:
        # Production refuses a per-process cache (horoscope_site/production.py): allauth's login
        # rate limits, the one-time staff MFA link and the shared send rate live here. A primary and
        # a replica in the other zone with automatic failover: when the cache is away, logins and
        # sends fail, and a lost node comes back in minutes alone but fails over in about one.
        self.cache_security_group = ec2.SecurityGroup(
            self,
            "CacheAccess",
            vpc=self.vpc,
            description="Redis: reachable from the app tasks only",
            allow_all_outbound=False,
        )
        token = secretsmanager.Secret(
            self,
            "CacheToken",
            secret_name="horoscope/cache-token",
            description="Redis AUTH token of the ElastiCache replication group (REDIS_AUTH_TOKEN)",
            # ElastiCache takes 16 to 128 printable characters without / " @; letters and digits only.
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        subnets = elasticache.CfnSubnetGroup(
            self,
            "CacheSubnets",
            cache_subnet_group_name="horoscope-cache",
            description="Daily Horoscope cache: the isolated subnets",
            subnet_ids=self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )
        cache = elasticache.CfnReplicationGroup(
            self,
            "Cache",
            replication_group_id="horoscope-cache",
            replication_group_description="Daily Horoscope: login rate limits, staff MFA links, the shared send rate",
            engine="redis",
            engine_version="7.1",
            cache_node_type=self.config.cache_node_type,
            num_cache_clusters=2,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[self.cache_security_group.security_group_id],
            port=CACHE_PORT,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=token.secret_value.unsafe_unwrap(),  # a dynamic reference, resolved by CloudFormation
            auto_minor_version_upgrade=True,
            # Nothing in it is worth restoring: counters and links expire within a day.
            snapshot_retention_limit=0,
        )
        return cache, token

    def _queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        # kombu finds the queue by name (prefix + Celery's queue), so the names are fixed.
        dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{QUEUE_PREFIX}{CELERY_QUEUE}-dead-letters",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        queue = sqs.Queue(
            self,
            "Tasks",
            queue_name=f"{QUEUE_PREFIX}{CELERY_QUEUE}",
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_S),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # A task received this often without being acknowledged is poison, not a hint to retry:
            # the database still knows its deliveries, and upkeep requeues them.
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=5),
        )
        return queue, dead_letters

    # --- email ---

    def _email(self) -> tuple[sns.Topic, ses.ConfigurationSet, ses.EmailIdentity]:
        topic = sns.Topic(self, "SesEvents", topic_name="horoscope-ses-events", enforce_ssl=True)
        # SNS posts every event to the site; django-ses confirms the subscription itself when the
        # topic is in AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS.
        topic.add_subscription(subscriptions.UrlSubscription(self.config.ses_events_url))
        configuration_set = ses.ConfigurationSet(
            self,
            "Sending",
            configuration_set_name=CONFIGURATION_SET,
            reputation_metrics=True,
            sending_enabled=True,
            suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
        )
        configuration_set.add_event_destination(
            "ToSns",
            destination=ses.EventDestination.sns_topic(topic),
            events=[
                ses.EmailSendingEvent.SEND,
                ses.EmailSendingEvent.DELIVERY,
                ses.EmailSendingEvent.BOUNCE,
                ses.EmailSendingEvent.COMPLAINT,
                ses.EmailSendingEvent.REJECT,
                ses.EmailSendingEvent.DELIVERY_DELAY,
                ses.EmailSendingEvent.RENDERING_FAILURE,
            ],
        )
        identity = ses.EmailIdentity(
            self,
            "Domain",
            identity=ses.Identity.domain(self.config.domain),
            configuration_set=configuration_set,
            mail_from_domain=f"mail.{self.config.domain}",
            dkim_signing=True,
        )
        return topic, configuration_set, identity

    # --- sign-in ---

    def _sign_in(self) -> tuple[cognito.UserPool, cognito.UserPoolClient, cognito.UserPoolDomain]:
        pool = cognito.UserPool(
            self,
            "Readers",
            user_pool_name="horoscope-readers",
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        client = pool.add_client(
            "Site",
            user_pool_client_name="horoscope-site",
            generate_secret=True,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[self.config.callback_url],
                logout_urls=[f"{self.config.site_url}/"],
            ),
            prevent_user_existence_errors=True,
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
        )
        domain = pool.add_domain(
            "HostedUi", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=self.config.cognito_domain_prefix)
        )
        return pool, client, domain

    # --- secrets ---

    def _app_secret(self) -> secretsmanager.Secret:
        # Django's key is generated into a secret of its own, then copied into the app secret by a
        # dynamic reference CloudFormation resolves at deploy time: the one JSON secret the app
        # reads holds the generated keys, and empty slots for the keys an operator brings.
        django_key = secretsmanager.Secret(
            self,
            "DjangoKey",
            secret_name="horoscope/django-key",
            description="Generated DJANGO_SECRET_KEY, copied into horoscope/app",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        return secretsmanager.Secret(
            self,
            "AppSecret",
            secret_name=SECRET_NAME,
            description="Daily Horoscope app secrets (APP_SECRETS_ID); fill OPENAI_API_KEY and PINECONE_API_KEY",
            secret_object_value={
                "DJANGO_SECRET_KEY": django_key.secret_value,
                "DJANGO_SECRET_KEY_FALLBACKS": SecretValue.unsafe_plain_text(""),
                "COGNITO_CLIENT_SECRET": self.app_client.user_pool_client_secret,
                "OPENAI_API_KEY": SecretValue.unsafe_plain_text(""),
                "PINECONE_API_KEY": SecretValue.unsafe_plain_text(""),
            },
        )

    # --- outputs: what deploy/production.env.example and docs/deploy.md refer to ---

    def _outputs(self) -> None:
        outputs = {
            "SiteUrl": self.config.site_url,
            "LoadBalancerDns": self.compute.load_balancer.load_balancer_dns_name,
            "AppSecretArn": self.app_secret.secret_arn,
            "DatabaseSecretArn": self.database.secret.secret_arn,
            "DatabaseHost": self.database.db_instance_endpoint_address,
            "CacheHost": self.cache.attr_primary_end_point_address,
            "CacheTokenSecretArn": self.cache_token.secret_arn,
            "TaskQueueUrl": self.queue.queue_url,
            "TaskQueueName": self.queue.queue_name,
            "DeadLetterQueueName": self.dead_letters.queue_name,
            "SesEventsTopicArn": self.events_topic.topic_arn,
            "SesConfigurationSet": self.configuration_set.configuration_set_name,
            "CognitoUserPoolId": self.user_pool.user_pool_id,
            "CognitoClientId": self.app_client.user_pool_client_id,
            "CognitoDomain": self.hosted_ui.base_url(),
            "ImageRepositoryUri": self.repository.repository_uri,
            "ClusterName": self.compute.cluster.cluster_name,
            "MigrateTaskDefinition": self.compute.task_definitions["web"].task_definition_arn,
            "TaskSubnets": ",".join(s.subnet_id for s in self.vpc.private_subnets),
            "TaskSecurityGroup": self.compute.task_security_group.security_group_id,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
        for index, record in enumerate(self.identity.dkim_records):
            CfnOutput(self, f"DkimRecord{index + 1}", value=f"{record.name} CNAME {record.value}")
