"""docs/architecture.{dot,svg,png} are drawn from the synthesized template (`make diagram`), and the
committed files are what the current stack draws."""

from __future__ import annotations

import pytest

from deploy import diagram
from devtools.servers import REPO_ROOT


@pytest.fixture(scope="module")
def drawn(synthesized, tmp_path_factory):
    out = tmp_path_factory.mktemp("diagram")
    graph = diagram.build_graph(synthesized.template)
    return graph, diagram.render(diagram.to_dot(graph), out)


@pytest.mark.parametrize("ext", ["dot", "svg", "png"])
def test_committed_diagram_is_what_the_stack_draws(drawn, ext):
    _graph, paths = drawn
    committed = REPO_ROOT / "docs" / f"architecture.{ext}"
    assert committed.read_bytes() == paths[ext].read_bytes(), (
        f"docs/architecture.{ext} is out of date with the stack: run `make diagram` and commit it"
    )


def test_diagram_shows_the_seeds_flow_and_the_supporting_services(drawn):
    graph, _paths = drawn
    flow = sorted(label for _a, _b, label, on_flow in graph.edges if on_flow)
    assert [label.split()[0] for label in flow] == ["1", "2", "3", "3", "4", "5"]
    labels = " ".join(label for label, _shape, _cluster in graph.nodes.values())
    for part in (
        *("beat", "workers", "SQS queue", "OpenAI", "Pinecone", "SES", "Reader", "Cognito", "Secrets Manager"),
        "ElastiCache Redis",
    ):
        assert part in labels, part
    assert any("SES events" in graph.nodes[b][0] for a, b, *_ in graph.edges if "SES" in graph.nodes[a][0])
    to_redis = {
        graph.nodes[a][0].split("\n")[0]: label for a, b, label, _ in graph.edges if "Redis" in graph.nodes[b][0]
    }
    assert to_redis == {
        "ECS Fargate: web (gunicorn)": "login limits, cache",
        "ECS Fargate: workers (Celery)": "shared send rate",
    }


def test_diagram_follows_the_template_not_a_drawing(synthesized):
    # Take the dead-letter queue out of the template: the drawing loses it too.
    template = {**synthesized.template, "Resources": dict(synthesized.template["Resources"])}
    for lid, resource in list(template["Resources"].items()):
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in resource["Properties"]:
            template["Resources"][lid] = {**resource, "Properties": dict(resource["Properties"])}
            del template["Resources"][lid]["Properties"]["RedrivePolicy"]
    graph = diagram.build_graph(template)
    assert not any(label == "after 5 receives" for *_ends, label, _flow in graph.edges)
