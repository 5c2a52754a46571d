"""The IAM policies in deploy/iam/ allow exactly the AWS calls the code makes, scoped to our resources.

The calls are gathered three ways:
- statically, from the project's Python files: boto3/botocore client creations and the API
  methods called on those clients (snake_case method -> operation -> IAM action);
- LIBRARY_CALLS: the calls libraries make for us, kept in this one place with where each comes from;
- dynamically: the secrets loader, django-ses, kombu's SQS transport and /healthz run against a
  moto server that records every operation it serves, which must all be in the gathered list.
"""

from __future__ import annotations

import ast
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.session
import environ
import parliament
import pytest
from botocore import xform_name
from moto.core.responses import BaseResponse

from devtools.servers import REPO_ROOT, moto_server
from forecasts.sending.heartbeats import heartbeat_record
from horoscope_site import secrets as app_secrets
from horoscope_site.config import celery_broker_options
from tests.support.workers import tasks_sent_to

POLICY_DIR = REPO_ROOT / "deploy" / "iam"
ROLES = ("web", "worker")
BOTH = frozenset(ROLES)
WORKER = frozenset({"worker"})

# Folders whose code never runs under the web or worker role.
NOT_DEPLOYED = {
    ".venv",
    "node_modules",
    "tests",
    "test-artifacts",
    "var",
    "benchmarks",
    "devtools",
    "migrations",
    ".git",
}

# Calls made inside libraries on our behalf, with where each one comes from.
LIBRARY_CALLS: list[tuple[str, frozenset[str], str]] = [
    (
        "secretsmanager:DescribeSecret",
        BOTH,
        "aws-secretsmanager-caching SecretCacheItem._execute_refresh (horoscope_site/secrets.py reads via SecretCache)",
    ),
    ("secretsmanager:GetSecretValue", BOTH, "aws-secretsmanager-caching SecretCacheVersion._execute_refresh"),
    (
        "ses:SendEmail",
        BOTH,
        "django-ses SESBackend.send_messages with USE_SES_V2 (web: allauth mails; worker: the daily send)",
    ),
    ("sqs:ListQueues", BOTH, "kombu SQS Channel._update_queue_cache (QueueNamePrefix=horoscope-)"),
    ("sqs:CreateQueue", BOTH, "kombu SQS Channel._new_queue when a queue does not exist yet"),
    ("sqs:GetQueueAttributes", BOTH, "kombu SQS Channel._size on publish, _has_redrive_policy on reject"),
    ("sqs:SendMessage", BOTH, "kombu SQS Channel._put: publishing a task (web, beat, retries)"),
    ("sqs:ReceiveMessage", WORKER, "kombu AsyncSQSConnection.receive_message: consuming tasks"),
    ("sqs:DeleteMessage", WORKER, "kombu SQS Channel.basic_ack (acks_late: after the task ran)"),
    ("sqs:ChangeMessageVisibility", WORKER, "kombu SQS Channel.basic_reject(requeue) / retry backoff"),
]

# Attributes that hold a boto3 client made inside a library.
LIBRARY_CLIENT_ATTRIBUTES = {
    "connection": "sesv2",  # django_ses.SESBackend.connection, after open(), with USE_SES_V2
}

# Which role runs a module's own AWS calls (default: both).
MODULE_ROLES: dict[str, frozenset[str]] = {
    "forecasts/sending/ses.py": WORKER,  # GetAccount for the shared send rate: only the daily send paces itself
    "forecasts/sending/send.py": WORKER,
    "forecasts/tasks.py": WORKER,
}

# Operations whose IAM action is not "<signing name>:<operation>".
ACTION_OVERRIDES = {("s3", "ListObjectsV2"): "s3:ListBucket", ("s3", "HeadObject"): "s3:GetObject"}

_botocore = botocore.session.get_session()


@dataclass(frozen=True)
class Call:
    action: str
    where: str


def iam_action(service: str, operation: str) -> str:
    model = _botocore.get_service_model(service)
    return ACTION_OVERRIDES.get((model.signing_name, operation), f"{model.signing_name}:{operation}")


def api_methods(service: str) -> dict[str, str]:
    """snake_case client method -> operation name."""
    return {xform_name(name): name for name in _botocore.get_service_model(service).operation_names}


def project_files() -> list[Path]:
    return sorted(
        path
        for path in REPO_ROOT.rglob("*.py")
        if not NOT_DEPLOYED.intersection(path.relative_to(REPO_ROOT).parts) and path.name != "conftest.py"
    )


def _service_of_creation(node: ast.AST) -> str | None:
    """The service name of `boto3.client("x")`, `session.client("x")`, `session.create_client("x")`."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if node.func.attr not in {"client", "create_client"}:
        return None
    arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "service_name"), None)
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        if arg.value not in _botocore.get_available_services():
            return None  # some other object's .client("...")
        return arg.value
    return None


def _name_of(node: ast.AST) -> str | None:
    """`x` -> "x", `obj.x` -> ".x": bare names and attributes are kept apart."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return "." + node.attr
    return None


def _owners(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    """Each node -> the innermost function around it (or the module)."""
    owner: dict[ast.AST, ast.AST] = dict.fromkeys(ast.walk(tree), tree)
    for node in ast.walk(tree):  # breadth first: inner functions overwrite outer ones
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for child in ast.walk(node):
                if child is not node:
                    owner[child] = node
    return owner


class Gatherer:
    """Static scan: which AWS operations does the project's own code call?

    A client is followed through a variable (within its function), an attribute (within its
    module, e.g. `self._client`), or a function that returns one (anywhere in the project).
    """

    def __init__(self, files: list[Path], root: Path = REPO_ROOT) -> None:
        self.root = root
        self.trees = {path: ast.parse(path.read_text(), filename=str(path)) for path in files}
        self.owners = {path: _owners(tree) for path, tree in self.trees.items()}
        # (scope, "x") for variables, (module, ".x") for attributes -> service of the client held
        self.holders: dict[tuple[object, str], str] = {}
        self.factories: dict[str, str] = {}  # function name -> service of the client it returns

    def _key(self, path: Path, node: ast.AST, name: str) -> tuple[object, str]:
        return (path, name) if name.startswith(".") else (self.owners[path][node], name)

    def service_of(self, path: Path, node: ast.AST) -> str | None:
        service = _service_of_creation(node)
        if service:
            return service
        if isinstance(node, ast.Call):
            name = _name_of(node.func)
            return self.factories.get(name.lstrip(".")) if name else None
        name = _name_of(node)
        if name is None:
            return None
        if name.startswith(".") and name[1:] in LIBRARY_CLIENT_ATTRIBUTES:
            return LIBRARY_CLIENT_ATTRIBUTES[name[1:]]
        return self.holders.get(self._key(path, node, name))

    def _learn(self) -> bool:
        changed = False
        for path, tree in self.trees.items():
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    service = self.service_of(path, node.value)
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        name = _name_of(target)
                        if service and name and self.holders.get(self._key(path, target, name)) != service:
                            self.holders[self._key(path, target, name)] = service
                            changed = True
                if isinstance(node, ast.FunctionDef):
                    for inner in ast.walk(node):
                        if isinstance(inner, ast.Return) and inner.value is not None:
                            service = self.service_of(path, inner.value)
                            if service and self.factories.get(node.name) != service:
                                self.factories[node.name] = service
                                changed = True
        return changed

    def calls(self) -> dict[str, list[Call]]:
        """Module path -> the AWS calls in it."""
        while self._learn():
            pass
        found: dict[str, list[Call]] = defaultdict(list)
        for path, tree in self.trees.items():
            module = path.relative_to(self.root).as_posix()
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "resource" and _name_of(node.value) == "boto3":
                    raise AssertionError(f"{module}:{node.lineno}: boto3.resource is not understood by this scan")
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                service = self.service_of(path, node.func.value)
                if not service:
                    continue
                method = node.func.attr
                if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                    method = node.args[0].value
                operation = api_methods(service).get(method)
                if operation:
                    found[module].append(Call(iam_action(service, operation), f"{module}:{node.lineno}"))
        return found


def required_actions() -> dict[str, dict[str, list[str]]]:
    """Role -> action -> where it comes from."""
    required: dict[str, dict[str, list[str]]] = {role: defaultdict(list) for role in ROLES}
    for action, roles, where in LIBRARY_CALLS:
        for role in roles:
            required[role][action].append(where)
    for module, calls in Gatherer(project_files()).calls().items():
        for call in calls:
            for role in MODULE_ROLES.get(module, BOTH):
                required[role][call.action].append(call.where)
    return required


def load_policy(role: str) -> dict:
    return json.loads((POLICY_DIR / f"{role}-role.json").read_text())


def allowed_actions(policy: dict) -> set[str]:
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def actions_of(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def statements_for(policy: dict, action: str) -> list[dict]:
    return [statement for statement in policy["Statement"] if action in actions_of(statement)]


def resources(statement: dict) -> list[str]:
    return [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]


# --- The static scan itself ---


def test_gatherer_finds_client_calls_through_names_attributes_and_factories(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "import boto3\n"
        "from functools import cache\n"
        "@cache\n"
        "def ses_client():\n"
        "    return boto3.client('sesv2', region_name='eu-west-1')\n"
        "class Store:\n"
        "    def __init__(self):\n"
        "        self._sm = boto3.session.Session().client('secretsmanager')\n"
        "    def read(self):\n"
        "        return self._sm.get_secret_value(SecretId='x')\n"
        "def send():\n"
        "    ses_client().send_email(Content={})\n"
        "    sqs = boto3.client(service_name='sqs')\n"
        "    for page in sqs.get_paginator('list_queues').paginate():\n"
        "        pass\n"
        "def rate(backend):\n"
        "    return backend.connection.get_account()\n"
        "def unrelated(client):\n"
        "    client.get_secret_value(SecretId='a redis or http client, not boto3')\n"
    )
    gatherer = Gatherer([source], root=tmp_path)
    actions = sorted(call.action for calls in gatherer.calls().values() for call in calls)

    assert actions == ["secretsmanager:GetSecretValue", "ses:GetAccount", "ses:SendEmail", "sqs:ListQueues"]


def test_project_scan_sees_the_project_code():
    files = {path.relative_to(REPO_ROOT).as_posix() for path in project_files()}
    assert "horoscope_site/secrets.py" in files
    assert "forecasts/web/api.py" in files
    assert not any("/tests/" in name or name.startswith("tests/") for name in files)


# --- The policies ---


@pytest.mark.parametrize("role", ROLES)
def test_policy_allows_exactly_the_calls_the_code_makes(role):
    required = required_actions()[role]
    allowed = allowed_actions(load_policy(role))

    missing = {action: required[action] for action in sorted(set(required) - allowed)}
    unused = sorted(allowed - set(required))
    assert not missing, f"{role} role lacks actions the code calls: {missing}"
    assert not unused, f"{role} role allows actions nothing calls: {unused}"


@pytest.mark.parametrize("role", ROLES)
def test_policy_passes_parliament_with_no_findings(role):
    text = (POLICY_DIR / f"{role}-role.json").read_text()
    findings = parliament.analyze_policy_string(text).findings
    assert [(f.issue, f.detail, f.location) for f in findings] == []


@pytest.mark.parametrize("role", ROLES)
def test_community_auditors_flag_only_queue_creation(role):
    # CreateQueue is kept (kombu creates a missing queue) and limited to our prefix; see deploy/iam/README.md.
    text = (POLICY_DIR / f"{role}-role.json").read_text()
    findings = parliament.analyze_policy_string(text, include_community_auditors=True).findings
    assert [(f.issue, f.location.get("actions")) for f in findings] == [
        ("PERMISSIONS_MANAGEMENT_ACTIONS", ["sqs:createqueue"])
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_statement_is_scoped_to_our_resources(role, tmp_path):
    policy = load_policy(role)
    prefix = celery_broker_options("sqs://", tmp_path, environ.Env())["queue_name_prefix"]
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        for resource in resources(statement):
            if resource == "*":
                # Only actions IAM cannot scope to a resource.
                assert set(actions) <= {"sqs:ListQueues", "ses:GetAccount"}, statement
            elif resource.startswith("arn:aws:sqs:"):
                assert resource.startswith(f"arn:aws:sqs:*:*:{prefix}"), statement
            elif resource.startswith("arn:aws:secretsmanager:"):
                assert resource == "arn:aws:secretsmanager:*:*:secret:horoscope/app-??????", statement
            else:
                assert resource.startswith("arn:aws:ses:"), statement
    for statement in statements_for(policy, "ses:SendEmail"):
        assert statement["Condition"]["StringEquals"]["ses:FromAddress"], "sending must be tied to our sender"


def test_django_ses_makes_no_calls_beyond_send_email(settings):
    # django-ses asks GetAccount itself only when AWS_SES_AUTO_THROTTLE is set.
    assert settings.AWS_SES_AUTO_THROTTLE is None
    assert settings.USE_SES_V2 is True


# --- Dynamic confirmation against a recording moto server ---


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.on = False

    def __call__(self, response: BaseResponse) -> None:
        if self.on:
            service = {"sesv2": "sesv2", "ses": "ses"}.get(response.service_name, response.service_name)
            self.seen.append(iam_action(service, response._get_action()))


@pytest.fixture(scope="module")
def recording_moto():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    recorder = Recorder()
    original = BaseResponse.call_action

    def call_action(self):
        recorder(self)
        return original(self)

    BaseResponse.call_action = call_action
    try:
        with moto_server() as url:
            yield url, recorder
    finally:
        BaseResponse.call_action = original


@pytest.fixture
def restore_loader_state():
    saved = dict(vars(app_secrets._state))
    yield
    vars(app_secrets._state).update(saved)


def test_secrets_loader_calls_only_what_the_policies_allow(recording_moto, monkeypatch, restore_loader_state):
    url, recorder = recording_moto
    name = f"horoscope/iam-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=url).create_secret(
        Name=name, SecretString=json.dumps({"DJANGO_SECRET_KEY": "k" * 50})
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
    monkeypatch.setenv("APP_SECRETS_ID", name)
    monkeypatch.setenv("SECRETS_REFRESH_INTERVAL", "0")
    # The client side too: botocore's before-call event on the client the loader builds.
    client_calls: list[str] = []
    build_cache = app_secrets.SecretsManagerStore._build_cache

    def build_and_listen(store):
        cache = build_cache(store)
        cache._client.meta.events.register(
            "before-call.*.*", lambda model, **kwargs: client_calls.append(iam_action("secretsmanager", model.name))
        )
        return cache

    monkeypatch.setattr(app_secrets.SecretsManagerStore, "_build_cache", build_and_listen)

    recorder.seen.clear()
    recorder.on = True
    try:
        app_secrets.load_secrets(environ.Env(), production=True)
        app_secrets.get_secret("OPENAI_API_KEY")
    finally:
        recorder.on = False

    assert set(recorder.seen) == {"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}
    assert sorted(client_calls) == sorted(recorder.seen)
    for role in ROLES:
        assert set(recorder.seen) <= set(required_actions()[role])


def test_django_ses_send_calls_only_what_the_policies_allow(recording_moto, settings):
    from django.core.mail import EmailMessage
    from django_ses import SESBackend

    url, recorder = recording_moto
    boto3.client("sesv2", region_name="us-east-1", endpoint_url=url).create_email_identity(
        EmailIdentity="daily@horoscope.example.com"
    )
    settings.AWS_SES_REGION_ENDPOINT_URL = url
    settings.AWS_SES_REGION_NAME = "us-east-1"

    recorder.seen.clear()
    recorder.on = True
    try:
        sent = SESBackend(aws_access_key="testing", aws_secret_key="testing").send_messages(
            [EmailMessage("Today", "Your sky.", "daily@horoscope.example.com", ["reader@example.com"])]
        )
    finally:
        recorder.on = False

    assert sent == 1
    assert set(recorder.seen) == {"ses:SendEmail"}
    for role in ROLES:
        assert set(recorder.seen) <= set(required_actions()[role])


def test_kombu_sqs_round_trip_calls_only_what_the_worker_policy_allows(recording_moto, tmp_path):
    from kombu import Connection

    url, recorder = recording_moto
    host_port = url.removeprefix("http://")
    options = celery_broker_options("sqs://", tmp_path, environ.Env())
    recorder.seen.clear()
    recorder.on = True
    try:
        with Connection(f"sqs://testing:testing@{host_port}", transport_options=options) as connection:
            queue = connection.SimpleQueue(f"iam-{uuid.uuid4().hex[:8]}")
            queue.put({"task": "ping"})
            message = queue.get(timeout=10)
            message.ack()
            queue.close()
    finally:
        recorder.on = False

    worker = set(required_actions()["worker"])
    assert {"sqs:ListQueues", "sqs:CreateQueue", "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= set(
        recorder.seen
    )
    assert set(recorder.seen) <= worker
    publishing = set(recorder.seen) - {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    assert publishing <= set(required_actions()["web"])


@pytest.mark.django_db
def test_healthz_on_sqs_calls_only_what_the_web_policy_allows(recording_moto, client, tmp_path):
    url, recorder = recording_moto
    options = celery_broker_options("sqs://", tmp_path, environ.Env())
    heartbeat_record("w1@worker-host")  # the worker's side: a database write, no AWS call
    recorder.seen.clear()
    recorder.on = True
    try:
        with tasks_sent_to(f"sqs://testing:testing@{url.removeprefix('http://')}", options):
            response = client.get("/healthz")
    finally:
        recorder.on = False

    assert response.status_code == 200, response.json()
    assert recorder.seen, "the broker check reached the SQS endpoint"
    # No reply queue to read or delete: the web never consumes from SQS.
    assert set(recorder.seen) <= set(required_actions()["web"])
