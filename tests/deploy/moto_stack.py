"""Deploy the synthesized template into moto's CloudFormation (server mode).

moto's CloudFormation creates the resource types it has models for. The others are taken out
before the deploy (their references become placeholder strings) and listed in NOT_IN_MOTO with
the reason; the few the app's settings point at are then made through their own service's API
from the template's properties (PLAYED), so the settings can be checked against real objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re

import boto3

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

# Resource type -> why moto's CloudFormation cannot create it here.
NOT_IN_MOTO: dict[str, str] = {
    "AWS::ApplicationAutoScaling::ScalableTarget": "no CloudFormation model in moto",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "no CloudFormation model in moto",
    "AWS::CloudWatch::Alarm": "no CloudFormation model in moto",
    "AWS::Cognito::UserPool": "no CloudFormation model in moto",
    "AWS::Cognito::UserPoolClient": "no CloudFormation model in moto",
    "AWS::Cognito::UserPoolDomain": "no CloudFormation model in moto",
    "AWS::EC2::SecurityGroupEgress": "no CloudFormation model in moto",
    "AWS::ElastiCache::ReplicationGroup": "no CloudFormation model in moto (played through ElastiCache)",
    "AWS::ElastiCache::SubnetGroup": "no CloudFormation model in moto (played through ElastiCache)",
    "AWS::S3::BucketPolicy": "no CloudFormation model in moto",
    "AWS::SES::ConfigurationSet": "no CloudFormation model in moto (played through SESv2)",
    "AWS::SES::ConfigurationSetEventDestination": "no CloudFormation model in moto",
    "AWS::SES::EmailIdentity": "no CloudFormation model in moto (played through SESv2)",
    "AWS::SNS::Subscription": "no CloudFormation model in moto (played through SNS Subscribe)",
    "AWS::SNS::TopicPolicy": "no CloudFormation model in moto",
    "AWS::SQS::QueuePolicy": "no CloudFormation model in moto",
    "AWS::SecretsManager::Secret": "no CloudFormation model in moto (played through Secrets Manager)",
    "AWS::SecretsManager::SecretTargetAttachment": "no CloudFormation model in moto",
    "AWS::Lambda::Function": "its code is a CDK asset that `cdk deploy` uploads to the bootstrap bucket",
    "Custom::DescribeCognitoUserPoolClient": "runs the Lambda above at deploy time (Cognito client secret)",
}


def placeholder(logical_id: str, attribute: str = "Ref") -> str:
    """ARN-shaped, since IAM policies in the stack may name the resource."""
    return f"arn:aws:notinmoto:{REGION}:{ACCOUNT}:{logical_id}/{attribute}"


def _rewrite(value, removed: set[str]):
    if isinstance(value, dict):
        if set(value) == {"Ref"} and (value["Ref"] in removed):
            return placeholder(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            target = target if isinstance(target, list) else target.split(".", 1)
            if target[0] in removed:
                return placeholder(target[0], target[1])
        return {key: _rewrite(inner, removed) for key, inner in value.items()}
    if isinstance(value, list):
        return [_rewrite(inner, removed) for inner in value]
    if isinstance(value, str) and "{{resolve:" in value:
        # Dynamic references to the (removed) generated secrets.
        return re.sub(r"\{\{resolve:[^}]*\}\}", "resolved-at-deploy", value)
    return value


def for_moto(template: dict) -> tuple[dict, dict[str, str]]:
    """The template without what moto cannot create; also the removed logical ids -> type."""
    template = copy.deepcopy(template)
    removed = {lid: r["Type"] for lid, r in template["Resources"].items() if r["Type"] in NOT_IN_MOTO}
    from moto.cloudformation.parsing import get_model_map

    unknown = {r["Type"] for r in template["Resources"].values()} - set(NOT_IN_MOTO) - set(get_model_map())
    listed_but_modelled = set(NOT_IN_MOTO) & set(get_model_map()) - {"AWS::Lambda::Function"}
    if listed_but_modelled:
        raise AssertionError(f"moto now models {sorted(listed_but_modelled)}: deploy them, drop them from NOT_IN_MOTO")
    for lid in removed:
        del template["Resources"][lid]
    # The bootstrap version check reads an SSM parameter `cdk bootstrap` makes.
    template.pop("Rules", None)
    template.pop("Parameters", None)
    ids = set(removed) | {"BootstrapVersion"}
    template = _rewrite(template, ids)
    for resource in template["Resources"].values():
        depends = resource.get("DependsOn")
        if depends:
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in ids]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
    return template, removed if not unknown else _raise_unknown(unknown)


def _raise_unknown(unknown: set[str]):
    raise AssertionError(f"resource types neither deployed to moto nor listed in NOT_IN_MOTO: {sorted(unknown)}")


def client(service: str, endpoint: str):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def deploy(template: dict, endpoint: str, name: str = "Horoscope") -> dict[str, str]:
    """Create the stack in moto; logical id -> physical id of every resource it created."""
    cloudformation = client("cloudformation", endpoint)
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise AssertionError(f"{stack['StackStatus']}: {stack.get('StackStatusReason')}")
    resources = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def join_with(value, resolve) -> str:
    """A template string value; `resolve(value)` gives the text of each reference in it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(join_with(part, resolve) for part in parts)
    return resolve(value)


class Player:
    """Makes the removed resources the app's settings name, through each service's own API."""

    def __init__(self, template: dict, created: dict[str, str], endpoint: str) -> None:
        self.resources = template["Resources"]
        self.created = created
        self.endpoint = endpoint
        self.values: dict[str, str] = {}  # placeholder -> the played object's real value
        self.generated: dict[str, str] = {}  # secret name -> generated text (what CloudFormation would make)

    def _of_type(self, kind: str) -> list[tuple[str, dict]]:
        return sorted((lid, r["Properties"]) for lid, r in self.resources.items() if r["Type"] == kind)

    def _resolve(self, value) -> str:
        if "Ref" in value:
            return self.created.get(value["Ref"]) or self.values.get(placeholder(value["Ref"]), "")
        raise AssertionError(f"cannot play {value}")

    def play(self) -> None:
        secrets = client("secretsmanager", self.endpoint)
        # Generated secrets first: the app secret copies Django's key from one of them.
        ordered = sorted(self._of_type("AWS::SecretsManager::Secret"), key=lambda item: "SecretString" in item[1])
        for lid, props in ordered:
            generate = props.get("GenerateSecretString")
            if generate:
                # Stands in for Secrets Manager's random text, as long as asked (production checks the key's length).
                made = hashlib.sha512(lid.encode()).hexdigest()[: generate.get("PasswordLength", 32)]
                key = generate.get("GenerateStringKey")
                text = json.dumps({**json.loads(generate["SecretStringTemplate"]), key: made}) if key else made
            else:
                text = self._app_secret_text(props["SecretString"])
            self.values[placeholder(lid)] = secrets.create_secret(Name=props["Name"], SecretString=text)["ARN"]
            self.generated[lid] = text
        for lid, props in self._of_type("AWS::SecretsManager::SecretTargetAttachment"):
            self.values[placeholder(lid)] = self.values[placeholder(props["SecretId"]["Ref"])]
        ses = client("sesv2", self.endpoint)
        for lid, props in self._of_type("AWS::SES::ConfigurationSet"):
            ses.create_configuration_set(ConfigurationSetName=props["Name"])
            self.values[placeholder(lid)] = props["Name"]
        for _lid, props in self._of_type("AWS::SES::EmailIdentity"):
            configuration_set = props["ConfigurationSetAttributes"]["ConfigurationSetName"]["Ref"]
            ses.create_email_identity(
                EmailIdentity=props["EmailIdentity"], ConfigurationSetName=self.values[placeholder(configuration_set)]
            )
        self._play_cache()
        sns = client("sns", self.endpoint)
        for _lid, props in self._of_type("AWS::SNS::Subscription"):
            sns.subscribe(
                TopicArn=self.created[props["TopicArn"]["Ref"]], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
            )

    def _play_cache(self) -> None:
        elasticache = client("elasticache", self.endpoint)
        for lid, props in self._of_type("AWS::ElastiCache::SubnetGroup"):
            elasticache.create_cache_subnet_group(
                CacheSubnetGroupName=props["CacheSubnetGroupName"],
                CacheSubnetGroupDescription=props["Description"],
                SubnetIds=[self.created[subnet["Ref"]] for subnet in props["SubnetIds"]],
            )
            self.values[placeholder(lid)] = props["CacheSubnetGroupName"]
        for lid, props in self._of_type("AWS::ElastiCache::ReplicationGroup"):
            # The AUTH token is a dynamic reference to the generated token secret.
            (token_secret,) = re.findall(
                r"\{\{resolve:secretsmanager:@@(\w+)@@", join_with(props["AuthToken"], self._marker)
            )
            group = elasticache.create_replication_group(
                ReplicationGroupId=props["ReplicationGroupId"],
                ReplicationGroupDescription=props["ReplicationGroupDescription"],
                Engine=props["Engine"],
                EngineVersion=props["EngineVersion"],
                CacheNodeType=props["CacheNodeType"],
                NumCacheClusters=props["NumCacheClusters"],
                AutomaticFailoverEnabled=props["AutomaticFailoverEnabled"],
                MultiAZEnabled=props["MultiAZEnabled"],
                CacheSubnetGroupName=self.values[placeholder(props["CacheSubnetGroupName"]["Ref"])],
                SecurityGroupIds=[self.created[ref["Fn::GetAtt"][0]] for ref in props["SecurityGroupIds"]],
                Port=props["Port"],
                AtRestEncryptionEnabled=props["AtRestEncryptionEnabled"],
                TransitEncryptionEnabled=props["TransitEncryptionEnabled"],
                AuthToken=self.generated[token_secret],
            )["ReplicationGroup"]
            endpoint = group["NodeGroups"][0]["PrimaryEndpoint"]
            self.values[placeholder(lid, "PrimaryEndPoint.Address")] = endpoint["Address"]
            self.values[placeholder(lid, "PrimaryEndPoint.Port")] = str(endpoint["Port"])

    @staticmethod
    def _marker(reference) -> str:
        return f"@@{reference['Ref']}@@"

    def _app_secret_text(self, value) -> str:
        def resolve(reference) -> str:
            if "Ref" in reference:
                return f"@@{reference['Ref']}@@"
            return "played-" + reference["Fn::GetAtt"][1].replace(".", "-").lower()

        text = join_with(value, resolve)
        # Dynamic references: the generated secret CloudFormation copies in at deploy time.
        return re.sub(
            r"\{\{resolve:secretsmanager:@@(\w+)@@:SecretString:::\}\}", lambda m: self.generated[m.group(1)], text
        )

    def substitute(self, text: str) -> str:
        """A value moto resolved, with the placeholders of played resources replaced by the real thing."""
        for fake, real in self.values.items():
            text = text.replace(fake, real)
        return text
