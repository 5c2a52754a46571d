"""cdk-nag's AWS Solutions rules and cfn-lint pass on the synthesized template; every finding we
accept is listed in deploy/nag.py with its reason, and none of those is stale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy import nag


def test_no_unacknowledged_cdk_nag_finding(synthesized):
    (report,) = synthesized.report["pluginReports"]
    assert report["pluginName"] == "AwsSolutions"
    assert report["violations"] == []
    assert report["conclusion"] == "success"


def test_every_acknowledgement_has_a_reason_and_still_matches_a_finding(synthesized):
    (report,) = synthesized.report["pluginReports"]
    used = {
        (item["acknowledgedAt"].removeprefix("Horoscope/"), item["acknowledgedId"].removeprefix("AwsSolutions::"))
        for item in report["suppressedViolations"]
    }
    for path, finding, reason in nag.ACKNOWLEDGED:
        assert len(reason) > 40, f"{finding} at {path}: say why"
        assert (path, finding) in used, f"{finding} at {path} no longer matches a finding: remove it"
    for item in report["suppressedViolations"]:
        assert item["reason"]


def test_cdk_nag_fails_synthesis_on_a_finding_nobody_acknowledged():
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App()
    stack = cdk.Stack(app, "Careless")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS2"):
        app.synth()


def lint(path):
    from cfnlint.api import ManualArgs, lint_file

    return [f"{m.rule.id} {m.message} ({m.path})" for m in lint_file(path, config=ManualArgs(regions=["us-east-1"]))]


def test_cfn_lint_passes(synthesized):
    assert lint(synthesized.template_path) == []


def test_cfn_lint_ignores_only_what_deploy_nag_lists_with_a_reason(synthesized):
    ignored = [
        (lid, r["Metadata"]["cfn-lint"]["config"])
        for lid, r in synthesized.template["Resources"].items()
        if "cfn-lint" in r.get("Metadata", {})
    ]
    assert len(ignored) == len(nag.CFN_LINT_IGNORED)
    assert all(config["reason"] for _, config in ignored)


def test_cfn_lint_would_catch_a_broken_template(synthesized, tmp_path):
    template = json.loads(json.dumps(synthesized.template))
    queue = next(r for r in template["Resources"].values() if r["Type"] == "AWS::SQS::Queue")
    queue["Properties"]["VisibilityTimeout"] = 999999  # above SQS's 12-hour maximum
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(template))
    assert any("VisibilityTimeout" in line for line in lint(broken))


def test_another_region_synthesizes_with_the_same_acknowledgements(tmp_path):
    from deploy.app import STACK_NAME, build

    app, _stack = build(
        {"region": "eu-west-1", "certificate_arn": "arn:aws:acm:eu-west-1:111122223333:certificate/abc"},
        outdir=str(tmp_path),
    )
    template = json.loads(Path(app.synth().get_stack_by_name(STACK_NAME).template_full_path).read_text())
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"][0]["violations"] == []
    assert "eu-west-1" in json.dumps(template["Resources"])
