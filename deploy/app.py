"""The CDK app: `python -m deploy.app` writes the CloudFormation template into deploy/cdk.out.

`build(context)` is what the tests and `python -m deploy.diagram` use: it synthesizes in-process
with no AWS account (the account stays a CloudFormation pseudo parameter) and runs cdk-nag.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk

from deploy.config import DeployConfig, DeployConfigError
from deploy.nag import check_with_nag
from deploy.stack import HoroscopeStack

STACK_NAME = "Horoscope"
OUT_DIR = Path(__file__).resolve().parent / "cdk.out"


def build(context: dict | None = None, outdir: str | None = None) -> tuple[cdk.App, HoroscopeStack]:
    app = cdk.App(
        context={**(context or {}), "aws:cdk:enable-path-metadata": False, "aws:cdk:version-reporting": False},
        outdir=outdir,
        analytics_reporting=False,
    )
    config = DeployConfig.from_context(app.node.try_get_context)
    stack = HoroscopeStack(
        app,
        STACK_NAME,
        config=config,
        env=cdk.Environment(region=config.region),
        description="Daily Horoscope: web, workers and beat on ECS Fargate, PostgreSQL, Redis, SQS, SES, Cognito",
    )
    check_with_nag(app, stack)
    return app, stack


def main() -> int:
    try:
        # The cdk command line says where it wants the template (CDK_OUTDIR); alone, deploy/cdk.out.
        app, _stack = build(outdir=os.environ.get("CDK_OUTDIR") or str(OUT_DIR))
    except DeployConfigError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
