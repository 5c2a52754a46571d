"""Alarms an operator is woken by, all sent to one SNS topic (subscribe an email with context alarm_email).

- the site answers 5xx;
- a send task has waited too long, or a task landed in the dead-letter queue;
- the worker heartbeat: /healthz answers 200 only when the database, the broker and a recent
  worker heartbeat are all there; a Route 53 health check asks it from outside;
- SES reputation: bounce rate over 2% and complaint rate over 0.08%, below the levels at which
  AWS reviews the account and may pause sending (5% and 0.1%).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

if TYPE_CHECKING:
    from deploy.stack import HoroscopeStack

BOUNCE_RATE_LIMIT = 0.02
COMPLAINT_RATE_LIMIT = 0.0008
OLDEST_TASK_LIMIT_S = 900


class Alarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stack: HoroscopeStack) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", topic_name="horoscope-alarms", enforce_ssl=True)
        if stack.config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(stack.config.alarm_email))
        compute = stack.compute
        balancer = compute.load_balancer
        five_minutes = Duration.minutes(5)

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._add(
            "Web5xx",
            "The site answered more than 10 server errors (5xx) in 5 minutes",
            balancer.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=five_minutes),
            threshold=10,
        )
        self._add(
            "LoadBalancer5xx",
            "The load balancer answered more than 10 errors (5xx) in 5 minutes: no healthy web task?",
            balancer.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=five_minutes),
            threshold=10,
        )
        self._add(
            "OldestTask",
            f"A task has waited in the queue more than {OLDEST_TASK_LIMIT_S // 60} minutes: workers are behind or down",
            stack.queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
            threshold=OLDEST_TASK_LIMIT_S,
            periods=5,
        )
        self._add(
            "DeadLetters",
            "A task was received 5 times without finishing and moved to the dead-letter queue",
            stack.dead_letters.metric_approximate_number_of_messages_visible(period=five_minutes, statistic="Maximum"),
            threshold=0,
        )
        self.health_check = route53.CfnHealthCheck(
            self,
            "Healthz",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="HTTPS",
                fully_qualified_domain_name=stack.config.domain,
                port=443,
                resource_path="/healthz",
                request_interval=30,
                failure_threshold=3,
            ),
        )
        # Route 53 publishes health check metrics in us-east-1 only; elsewhere the alarm has no data
        # and missing data counts as failing, so it cannot stay silently green (docs/deploy.md).
        self._add(
            "WorkerHeartbeat",
            "/healthz is not 200: the database, the broker or every worker's heartbeat is missing",
            cloudwatch.Metric(
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions_map={"HealthCheckId": self.health_check.attr_health_check_id},
                statistic="Minimum",
                period=Duration.minutes(1),
            ),
            threshold=1,
            periods=3,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        self._add(
            "SesBounceRate",
            "SES bounce rate over 2% (AWS reviews the account at 5% and may pause sending)",
            cloudwatch.Metric(
                namespace="AWS/SES", metric_name="Reputation.BounceRate", statistic="Maximum", period=Duration.hours(1)
            ),
            threshold=BOUNCE_RATE_LIMIT,
        )
        self._add(
            "SesComplaintRate",
            "SES complaint rate over 0.08% (AWS reviews the account at 0.1% and may pause sending)",
            cloudwatch.Metric(
                namespace="AWS/SES",
                metric_name="Reputation.ComplaintRate",
                statistic="Maximum",
                period=Duration.hours(1),
            ),
            threshold=COMPLAINT_RATE_LIMIT,
        )

    def _add(
        self,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=f"horoscope-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms[name] = alarm
