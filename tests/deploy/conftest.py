"""The stack is synthesized once per test session (jsii starts Node; a synth takes tens of seconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Synthesized:
    stack: object  # deploy.stack.HoroscopeStack
    template: dict
    template_path: Path
    report: dict  # cdk-nag's validation report

    def resources(self, kind: str) -> dict[str, dict]:
        return {lid: r for lid, r in self.template["Resources"].items() if r["Type"] == kind}

    def one(self, kind: str) -> dict:
        found = self.resources(kind)
        assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
        return next(iter(found.values()))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Synthesized:
    from deploy.app import STACK_NAME, build

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build(outdir=str(outdir))
    assembly = app.synth()
    template_path = Path(assembly.get_stack_by_name(STACK_NAME).template_full_path)
    report = json.loads((outdir / "validation-report.json").read_text())
    return Synthesized(stack, json.loads(template_path.read_text()), template_path, report)


@pytest.fixture(scope="session")
def assertions(synthesized):
    from aws_cdk.assertions import Template

    return Template.from_json(synthesized.template)
