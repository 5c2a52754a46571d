"""The architecture diagram, drawn from the synthesized CloudFormation template.

`python -m deploy.diagram` synthesizes the stack (deploy/app.py) and writes docs/architecture.dot,
.svg and .png. Nodes are the template's resources; edges come from what the template says about
them: the environment and secrets each task definition references, what each task role's IAM
policy allows, the queue's redrive policy, the SES event destination, the SNS subscription's
endpoint, the alarms' actions. Only the outside parties (the reader, OpenAI, Pinecone) are
named here, and OpenAI and Pinecone are drawn because the app secret holds their keys.
tests/deploy/test_diagram.py regenerates the files and fails when the committed ones differ.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
FONT = "DejaVu Sans"
# The seed's flow, in order; edges on it are drawn bold and numbered.
FLOW = ("schedule", "dispatch", "workers", "retrieval/LLM", "SES", "reader")


@dataclass
class Graph:
    nodes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (label, shape, cluster)
    edges: set[tuple[str, str, str, bool]] = field(default_factory=set)  # (from, to, label, on the flow)

    def node(self, node_id: str, label: str, shape: str = "box", cluster: str = "") -> str:
        self.nodes[node_id] = (label, shape, cluster)
        return node_id

    def edge(self, a: str, b: str, label: str = "", flow: bool = False) -> None:
        if a in self.nodes and b in self.nodes:
            self.edges.add((a, b, label, flow))


def _refs(value) -> set[str]:
    """Logical ids a template value points at (Ref, Fn::GetAtt), anywhere inside it."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and not inner.startswith("AWS::"):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            else:
                found |= _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _refs(inner)
    return found


def _text(value) -> str:
    """A template string with its references written as '*' (for matching IAM resource patterns)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_text(part) for part in parts)
    return "*"


def _of_type(resources: dict, kind: str) -> list[tuple[str, dict]]:
    return sorted((lid, r) for lid, r in resources.items() if r["Type"] == kind)


def _allowed(role: dict) -> list[tuple[str, list[str]]]:
    """(action, resource patterns) for every action a role's inline policies allow."""
    allowed = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            allowed += [(action, [_text(r) for r in listed]) for action in actions]
    return allowed


def _matches(patterns: list[str], arn_tail: str) -> bool:
    return any(fnmatch.fnmatchcase(arn_tail, p.split(":", 5)[-1]) for p in patterns if p != "*")


def build_graph(template: dict) -> Graph:
    resources = template["Resources"]
    g = Graph()
    reader = g.node("reader", "Reader\n(browser and inbox)", "ellipse")
    balancer = next(lid for lid, _ in _of_type(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
    g.node(balancer, "Application Load Balancer\nhttps, /healthz checks", cluster="vpc")
    g.edge(reader, balancer, "https")

    services = {}
    for lid, service in _of_type(resources, "AWS::ECS::Service"):
        name = service["Properties"]["ServiceName"].removeprefix("horoscope-")
        definition = resources[service["Properties"]["TaskDefinition"]["Ref"]]
        container = definition["Properties"]["ContainerDefinitions"][0]
        command = " ".join(container.get("Command", [])[: 4 if name != "web" else 2])
        count = "exactly 1" if name == "beat" else "autoscaled" if name == "worker" else "2+"
        label = {"web": "web (gunicorn)", "worker": "workers (Celery)", "beat": "beat (Celery)"}[name]
        node = g.node(lid, f"ECS Fargate: {label}\n{count}\n{command}", cluster="vpc")
        services[name] = (node, definition, container)

    web, worker, beat = (services[n][0] for n in ("web", "worker", "beat"))
    g.edge(balancer, web, "forward")

    queues = {r["Properties"]["QueueName"]: lid for lid, r in _of_type(resources, "AWS::SQS::Queue")}
    for name, lid in queues.items():
        g.node(lid, f"SQS queue\n{name}")
        redrive = resources[lid]["Properties"].get("RedrivePolicy")
        if redrive:
            g.edge(lid, next(iter(_refs(redrive))), "after 5 receives")
    secrets = {r["Properties"]["Name"]: lid for lid, r in _of_type(resources, "AWS::SecretsManager::Secret")}
    app_secret = secrets["horoscope/app"]
    secret_text = json.dumps(resources[app_secret]["Properties"].get("SecretString"))
    g.node(app_secret, "Secrets Manager\nhoroscope/app (APP_SECRETS_ID)")
    for lid, db in _of_type(resources, "AWS::RDS::DBInstance"):
        g.node(lid, f"RDS PostgreSQL {db['Properties']['EngineVersion']}\nencrypted, backups", "cylinder", "vpc")
    for lid, cache in _of_type(resources, "AWS::ElastiCache::ReplicationGroup"):
        nodes = cache["Properties"]["NumCacheClusters"]
        replicas = "primary + replica" if nodes == 2 else f"{nodes} nodes"
        g.node(lid, f"ElastiCache Redis {cache['Properties']['EngineVersion']}\n{replicas}, TLS", "cylinder", "vpc")
    for lid, _ in _of_type(resources, "AWS::Cognito::UserPool"):
        g.node(lid, "Cognito user pool\nhosted sign-in UI")
        g.edge(reader, lid, "sign in")
    identities = _of_type(resources, "AWS::SES::EmailIdentity")
    ses = g.node(identities[0][0], f"SES\n{identities[0][1]['Properties']['EmailIdentity']} (DKIM)")
    for _lid, destination in _of_type(resources, "AWS::SES::ConfigurationSetEventDestination"):
        topic = destination["Properties"]["EventDestination"]["SnsDestination"]["TopicARN"]["Ref"]
        g.node(topic, "SNS topic\nSES events")
        g.edge(ses, topic, "bounce, complaint, delivery")
    for _lid, subscription in _of_type(resources, "AWS::SNS::Subscription"):
        if subscription["Properties"]["Protocol"] == "https":
            path = "/" + subscription["Properties"]["Endpoint"].split("/", 3)[3]
            g.edge(subscription["Properties"]["TopicArn"]["Ref"], balancer, f"https POST {path}")
    if "OPENAI_API_KEY" in secret_text:
        g.node("openai", "OpenAI\n(writes the reading)", "ellipse")
    if "PINECONE_API_KEY" in secret_text:
        g.node("pinecone", "Pinecone\n(retrieves passages)", "ellipse")

    for _name, (node, definition, container) in sorted(services.items()):
        # What the container is told about: its environment and secrets reference these resources.
        for ref in sorted(_refs(container.get("Environment", [])) | _refs(container.get("Secrets", []))):
            kind = resources.get(ref, {}).get("Type", "")
            if kind == "AWS::RDS::DBInstance":
                g.edge(node, ref, "SQL")
            elif kind == "AWS::ElastiCache::ReplicationGroup" and node != beat:  # beat only publishes tasks
                g.edge(node, ref, "shared send rate" if node == worker else "login limits, cache")
            elif kind == "AWS::Cognito::UserPool" and node == web:
                g.edge(node, ref, "OAuth code, JWKS")
        # What the task role may do.
        for action, patterns in _allowed(resources[definition["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]]):
            if action == "secretsmanager:GetSecretValue" and _matches(patterns, "secret:horoscope/app-abcdef"):
                g.edge(app_secret, node, "keys")
            for queue_name, queue in queues.items():
                if not _matches(patterns, queue_name) or queue_name.endswith("dead-letters"):
                    continue
                if action == "sqs:SendMessage" and node == beat:
                    g.edge(node, queue, f"1 {FLOW[0]}: {FLOW[1]} every minute", flow=True)
                elif action == "sqs:SendMessage" and node == web:
                    g.edge(node, queue, "enqueue")
                elif action == "sqs:ReceiveMessage":
                    g.edge(queue, node, f"2 {FLOW[1]}: send batches to {FLOW[2]}", flow=True)
            if action == "ses:SendEmail" and node != beat:  # beat only publishes tasks
                if node == worker:
                    g.edge(node, ses, f"4 SendEmail ({FLOW[4]})", flow=True)
                else:
                    g.edge(node, ses, "account emails")
    g.edge(worker, "openai", f"3 {FLOW[3]}", flow=True)
    g.edge(worker, "pinecone", f"3 {FLOW[3]}", flow=True)
    g.edge(ses, reader, f"5 daily email ({FLOW[5]})", flow=True)

    # The operator's alarms (the autoscaling alarms have no name and act on scaling policies).
    alarms = [a for _, a in _of_type(resources, "AWS::CloudWatch::Alarm") if "AlarmName" in a["Properties"]]
    if alarms:
        actions = sorted({ref for alarm in alarms for ref in _refs(alarm["Properties"].get("AlarmActions", []))})
        actions = [ref for ref in actions if resources[ref]["Type"] == "AWS::SNS::Topic"]
        names = sorted(alarm["Properties"]["AlarmName"].removeprefix("horoscope-") for alarm in alarms)
        g.node("alarms", "CloudWatch alarms\n" + "\n".join(names), "note")
        for action in actions:
            g.node(action, "SNS topic\nalarms -> operator")
            g.edge("alarms", action)
    return g


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(g: Graph) -> str:
    lines = [
        "digraph horoscope {",
        f'  graph [rankdir=LR, fontname="{FONT}", fontsize=12, nodesep=0.35, ranksep=0.6,',
        '         label="Daily Horoscope on AWS: ' + " -> ".join(FLOW) + ' (bold, numbered)", labelloc=t];',
        f'  node [fontname="{FONT}", fontsize=10, style="rounded,filled", fillcolor="#f5f2ff"];',
        f'  edge [fontname="{FONT}", fontsize=9, color="#555555"];',
    ]
    clusters = sorted({cluster for _, _, cluster in g.nodes.values() if cluster})
    for cluster in clusters:
        lines.append(f'  subgraph "cluster_{cluster}" {{')
        lines.append('    label="VPC (private subnets, no public IPs on tasks)"; style=dashed; color="#888888";')
        for node_id, (label, shape, c) in sorted(g.nodes.items()):
            if c == cluster:
                lines.append(f"    {_quote(node_id)} [label={_quote(label)}, shape={shape}];")
        lines.append("  }")
    for node_id, (label, shape, c) in sorted(g.nodes.items()):
        if not c:
            lines.append(f"  {_quote(node_id)} [label={_quote(label)}, shape={shape}];")
    # The reader starts the picture; the outside services end it.
    lines.append('  { rank=source; "reader"; }')
    lines.append('  { rank=sink; "openai"; "pinecone"; }')
    for a, b, label, flow in sorted(g.edges):
        style = ', penwidth=2.2, weight=4, color="#4b2aa8", fontcolor="#4b2aa8"' if flow else ""
        lines.append(f"  {_quote(a)} -> {_quote(b)} [label={_quote(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, out_dir: Path = DOCS) -> dict[str, Path]:
    """Write architecture.dot/.svg/.png into `out_dir`; the SVG without graphviz's version comment."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"architecture.{ext}" for ext in ("dot", "svg", "png")}
    paths["dot"].write_text(dot_source)
    try:
        svg = subprocess.run(["dot", "-Tsvg"], input=dot_source, capture_output=True, text=True, check=True).stdout
        png = subprocess.run(["dot", "-Tpng", "-Gdpi=96"], input=dot_source.encode(), capture_output=True, check=True)
    except FileNotFoundError:
        raise SystemExit("diagram: graphviz's `dot` is missing (Debian: apt-get install graphviz)") from None
    svg = "\n".join(line for line in svg.splitlines() if not line.startswith("<!-- Generated by graphviz")) + "\n"
    paths["svg"].write_text(svg)
    paths["png"].write_bytes(png.stdout)
    return paths


def synthesized_template() -> dict:
    from deploy.app import STACK_NAME, build

    with tempfile.TemporaryDirectory(prefix="horoscope-synth-") as outdir:
        app, _stack = build(outdir=outdir)
        assembly = app.synth()
        return json.loads(Path(assembly.get_stack_by_name(STACK_NAME).template_full_path).read_text())


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else DOCS
    paths = render(to_dot(build_graph(synthesized_template())), out_dir)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
