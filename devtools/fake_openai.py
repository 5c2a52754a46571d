"""A local HTTP server that speaks enough of OpenAI's API for the SDK: `responses.parse` and `embeddings.create`.

The OpenAI SDK talks through httpx2, which respx cannot intercept, so tests point the real SDK
at this server on loopback (`base_url=server.base_url`). Each test scripts what it answers:

    with FakeOpenAI() as server:
        server.queue(json_body={...})         # answered as the model's structured output
        server.queue(status=500)              # an error status (429, 500, ...)
        server.queue(hang=5.0)                # hold the request this long before answering
        server.default = lambda request: {...}  # answers once the queue is empty
        ...
        server.calls                          # every request body received, in order

Answers with `retry-after-ms: 1` on errors so the SDK's own retries (if any) do not slow tests.
"""

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    """One scripted answer: a structured-output JSON body, an error status, or a hang first."""

    json_body: Any = None
    status: int = 200
    hang: float = 0.0
    input_tokens: int = 321
    output_tokens: int = 123


@dataclass
class Call:
    path: str
    body: dict
    headers: dict
    at: float = field(default_factory=time.monotonic)


def response_object(output_json: Any, model: str, input_tokens: int, output_tokens: int) -> dict:
    """A Responses API `response` object whose only output is an assistant message with `text`."""
    text = output_json if isinstance(output_json, str) else json.dumps(output_json)
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": time.time(),
        "status": "completed",
        "model": model,
        "output": [
            {
                "id": f"msg_{uuid.uuid4().hex}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def hashed_embedding(text: str, dimension: int) -> list[float]:
    """A deterministic bag-of-words vector: texts sharing words point the same way."""
    vector = [0.0] * dimension
    for word in re.findall(r"[a-z]+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dimension] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [round(value / norm, 6) for value in vector]


def embeddings_object(body: dict) -> dict:
    """An Embeddings API answer for `POST /v1/embeddings`."""
    inputs = body.get("input") or []
    inputs = [inputs] if isinstance(inputs, str) else inputs
    dimension = int(body.get("dimensions") or 64)
    return {
        "object": "list",
        "model": body.get("model") or "fake-embedding",
        "data": [
            {"object": "embedding", "index": i, "embedding": hashed_embedding(text, dimension)}
            for i, text in enumerate(inputs)
        ],
        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
    }


class FakeOpenAI:
    """A scriptable ThreadingHTTPServer on 127.0.0.1 serving `POST /v1/responses`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []  # POST /v1/responses
        self.embedding_calls: list[Call] = []  # POST /v1/embeddings
        self._queue: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Called with the request body when the queue is empty; returns the structured output JSON
        # (or a Scripted for full control). None answers 500.
        self.default: Callable[[dict], Any] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                if self.path.rstrip("/") == "/v1/embeddings":
                    with server._lock:
                        server.embedding_calls.append(Call(self.path, body, {}))
                    self._send(200, embeddings_object(body))
                    return
                if self.path.rstrip("/") != "/v1/responses":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                with server._lock:
                    server.calls.append(Call(self.path, body, {k.lower(): v for k, v in self.headers.items()}))
                    scripted = server._queue.popleft() if server._queue else None
                if scripted is None:
                    answer = server.default(body) if server.default else None
                    scripted = answer if isinstance(answer, Scripted) else Scripted(json_body=answer)
                    if answer is None:
                        scripted = Scripted(status=500)
                if scripted.hang:
                    # Hold the connection; stop early when the server shuts down.
                    server._stop.wait(scripted.hang)
                if scripted.status != 200:
                    message = "Rate limit reached" if scripted.status == 429 else "The server had an error"
                    kind = "rate_limit_error" if scripted.status == 429 else "server_error"
                    self._send(scripted.status, {"error": {"message": message, "type": kind}}, retry=True)
                    return
                model = body.get("model") or "fake-model"
                payload = response_object(scripted.json_body, model, scripted.input_tokens, scripted.output_tokens)
                self._send(200, payload)

            def _send(self, status: int, payload: dict, retry: bool = False) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    if retry:
                        self.send_header("retry-after-ms", "1")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def queue(self, json_body: Any = None, *, status: int = 200, hang: float = 0.0, **extra) -> None:
        """Answer the next request this way (answers are used in the order queued)."""
        with self._lock:
            self._queue.append(Scripted(json_body=json_body, status=status, hang=hang, **extra))

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self.calls)

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
