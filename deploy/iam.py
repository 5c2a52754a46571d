"""The task roles' permissions, read from deploy/iam/*.json: the files horoscope_site/tests/test_iam.py
checks against the calls the code makes. Only the placeholders are replaced (sender address,
region and account); the actions and the shape of every statement stay as tested.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import aws_iam as iam

from deploy.config import DeployConfig

POLICY_DIR = Path(__file__).resolve().parent / "iam"
PLACEHOLDER_SENDER = "daily@horoscope.example.com"


def policy_document(role: str) -> dict:
    return json.loads((POLICY_DIR / f"{role}-role.json").read_text())


def _pin(resource: str, region: str, account: str) -> str:
    """arn:aws:svc:*:*:rest -> arn:aws:svc:<region>:<account>:rest (wildcards elsewhere stay)."""
    parts = resource.split(":", 5)
    if resource == "*" or len(parts) < 6:
        return resource
    if parts[3] == "*":
        parts[3] = region
    if parts[4] == "*":
        parts[4] = account
    return ":".join(parts)


def deployed_statements(role: str, config: DeployConfig, region: str, account: str) -> list[dict]:
    """The role's statements as JSON, placeholders replaced for this deployment."""
    statements = []
    for statement in policy_document(role)["Statement"]:
        statement = json.loads(json.dumps(statement).replace(PLACEHOLDER_SENDER, config.sender_address))
        listed = statement["Resource"]
        pinned = [_pin(r, region, account) for r in ([listed] if isinstance(listed, str) else listed)]
        statement["Resource"] = pinned[0] if isinstance(listed, str) else pinned
        statements.append(statement)
    return statements


def policy_for(role: str, config: DeployConfig, region: str, account: str) -> iam.PolicyDocument:
    return iam.PolicyDocument.from_json(
        {"Version": "2012-10-17", "Statement": deployed_statements(role, config, region, account)}
    )
