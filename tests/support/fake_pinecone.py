"""A fake of Pinecone's HTTP API for respx (the pinecone SDK talks through plain httpx).

Control plane (describe / create index), data plane (upsert, query with metadata filters,
delete) and hosted inference (embed), kept in memory:

    with FakePinecone(dimension=32) as pinecone:
        ...                      # code under test using the real `pinecone` SDK
        pinecone.vectors("kb-v1")     # what was upserted
        pinecone.requests            # (method, path) of every request
        pinecone.fail = "connect"    # or "503": every request fails from now on
"""

import json
import math
import threading

import httpx
import respx

from devtools.fake_openai import hashed_embedding

CONTROL = "https://api.pinecone.io"


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _matches(metadata: dict, expression: dict | None) -> bool:
    for field, condition in (expression or {}).items():
        if field in ("$and", "$or"):
            parts = [_matches(metadata, part) for part in condition]
            if (field == "$and" and not all(parts)) or (field == "$or" and not any(parts)):
                return False
            continue
        value = metadata.get(field)
        values = value if isinstance(value, list) else [value]
        condition = condition if isinstance(condition, dict) else {"$eq": condition}
        for operator, operand in condition.items():
            if operator == "$eq" and operand not in values:
                return False
            if operator == "$in" and not set(values) & set(operand):
                return False
            if operator == "$ne" and operand in values:
                return False
    return True


class FakePinecone:
    """In-memory Pinecone behind respx routes (see the module docstring)."""

    def __init__(self, *, index_name: str = "horoscope-kb", dimension: int = 32, exists: bool = False) -> None:
        self.index_name = index_name
        self.dimension = dimension
        self.host = f"{index_name}-abc123.svc.aped-4627-b74a.pinecone.io"
        self.exists = exists
        self.namespaces: dict[str, dict[str, tuple[list[float], dict]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail: str | None = None
        self._lock = threading.Lock()
        self._router = respx.mock(assert_all_called=False, assert_all_mocked=True)

    def vectors(self, namespace: str) -> dict[str, tuple[list[float], dict]]:
        return self.namespaces.get(namespace, {})

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p == path)

    def _model(self) -> dict:
        return {
            "name": self.index_name,
            "host": self.host,
            "schema": {
                "fields": {"_values": {"type": "dense_vector", "dimension": self.dimension, "metric": "cosine"}}
            },
            "deployment": {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"},
            "status": {"ready": True, "state": "Ready"},
            "deletion_protection": "disabled",
        }

    def _handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append((request.method, request.url.path))
            if self.fail == "connect":
                raise httpx.ConnectError("connection refused", request=request)
            if self.fail == "503":
                return httpx.Response(503, json={"error": {"code": "UNAVAILABLE", "message": "down"}, "status": 503})
            body = json.loads(request.content or b"{}") if request.method == "POST" else {}
            return self._answer(request, body)

    def _answer(self, request: httpx.Request, body: dict) -> httpx.Response:
        path, host = request.url.path, request.url.host
        if host == "api.pinecone.io":
            if request.method == "GET" and path == f"/indexes/{self.index_name}":
                if not self.exists:
                    return httpx.Response(
                        404, json={"error": {"code": "NOT_FOUND", "message": "no index"}, "status": 404}
                    )
                return httpx.Response(200, json=self._model())
            if request.method == "POST" and path == "/indexes":
                self.exists = True
                field = next(iter(body["schema"]["fields"].values()))
                self.dimension = field["dimension"]
                return httpx.Response(201, json=self._model())
            if request.method == "POST" and path == "/embed":
                data = [
                    {"values": hashed_embedding(item["text"], self.dimension), "vector_type": "dense"}
                    for item in body["inputs"]
                ]
                usage = {"total_tokens": len(data)}
                return httpx.Response(
                    200, json={"model": body["model"], "vector_type": "dense", "data": data, "usage": usage}
                )
        elif host == self.host:
            space = self.namespaces.setdefault(body.get("namespace", ""), {})
            if path == "/vectors/upsert":
                for vector in body["vectors"]:
                    assert len(vector["values"]) == self.dimension
                    space[vector["id"]] = (vector["values"], vector.get("metadata") or {})
                return httpx.Response(200, json={"upsertedCount": len(body["vectors"])})
            if path == "/query":
                scored = sorted(
                    (
                        (_cosine(body["vector"], values), key, metadata)
                        for key, (values, metadata) in space.items()
                        if _matches(metadata, body.get("filter"))
                    ),
                    reverse=True,
                )[: body["topK"]]
                matches = [
                    {"id": key, "score": score, **({"metadata": metadata} if body.get("includeMetadata") else {})}
                    for score, key, metadata in scored
                ]
                return httpx.Response(200, json={"matches": matches, "namespace": body.get("namespace", "")})
            if path == "/vectors/delete":
                if body.get("deleteAll"):
                    space.clear()
                for key in body.get("ids") or []:
                    space.pop(key, None)
                return httpx.Response(200, json={})
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": f"no route {path}"}, "status": 404})

    def __enter__(self) -> "FakePinecone":
        self._router.__enter__()
        self._router.route(host="api.pinecone.io").mock(side_effect=self._handle)
        self._router.route(host=self.host).mock(side_effect=self._handle)
        # Everything else (the OpenAI fake on loopback, the test database) passes through.
        self._router.route().pass_through()
        return self

    def __exit__(self, *exc) -> None:
        self._router.__exit__(*exc)
