"""A local SESv2-compatible endpoint: what django-ses and boto3 call, answered on loopback.

    with SesSink(max_send_rate=20) as sink:
        settings.AWS_SES_REGION_ENDPOINT_URL = sink.endpoint_url
        ...                                  # send through django_ses.SESBackend (USE_SES_V2)
        sink.wait_for(10)                    # the accepted messages, with their arrival times
        sink.max_in_window(1.0)              # the most messages accepted in any 1-second window

Speaks the SESv2 REST API (JSON over HTTP/1.1 keep-alive, ThreadingHTTPServer):
- POST /v2/email/outbound-emails   SendEmail with raw content -> {"MessageId": ...}
- GET  /v2/email/account           GetAccount -> SendQuota.MaxSendRate and friends
Fault injection, for tests and benchmarks:
- `throttle_fraction`: that share of SendEmail calls (chosen by a seeded RNG) is answered with
  `throttle_code` (default 429 TooManyRequestsException; "Throttling" gives SES v1's 400
  "Maximum sending rate exceeded.");
- `enforce_rate=True`: like SES, answer Throttling to any call beyond MaxSendRate in the last second;
- `reject(*addresses)`: those recipients get 400 MessageRejected;
- `fail_next(n, status, code)`: the next n SendEmail calls get that error (e.g. 500 InternalFailure);
- `latency`: seconds to wait before answering (the arrival time is recorded first);
- `hold_up(fraction, seconds)`: that share of SendEmail calls (seeded RNG) is stamped `seconds`
  after it came in, as if it had been that long on its way (a busy machine, a slow network);
  `most_in_progress` says how many SendEmail calls were being answered at once, at most.
Every call is recorded in `calls` (arrival time, status, error code, recipients); every accepted
message in `messages` (message id, arrival time, sender, recipients, raw bytes, parsed email).
Signatures are not checked: any dummy credentials do.
"""

import base64
import binascii
import json
import random
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devtools.rates import most_in_any_window

SEND_PATH = "/v2/email/outbound-emails"
ACCOUNT_PATH = "/v2/email/account"
THROTTLE_ERRORS = {
    "TooManyRequestsException": (429, "Too many requests."),
    "Throttling": (400, "Maximum sending rate exceeded."),
}


@dataclass(frozen=True)
class SinkCall:
    """One HTTP call the sink answered."""

    at: float  # time.time() when the request arrived
    operation: str  # SendEmail, GetAccount, or the method and path for anything else
    status: int
    error: str  # the error code answered, "" on success
    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class SinkMessage:
    """One message the sink accepted."""

    message_id: str
    at: float  # time.time() when the request arrived
    from_address: str
    to: tuple[str, ...]
    raw: bytes
    configuration_set: str | None = None
    _parsed: list = field(default_factory=list, repr=False, compare=False)

    @property
    def email(self) -> EmailMessage:
        if not self._parsed:
            self._parsed.append(message_from_bytes(self.raw, policy=policy.default))
        return self._parsed[0]

    def header(self, name: str) -> str | None:
        value = self.email[name]
        return None if value is None else str(value)

    def text(self) -> str:
        part = self.email.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.email.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: "_Server"

    def log_message(self, format, *args):
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, payload: dict, error: str = "") -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._answer(status, {"__type": code, "message": message}, error=code)

    def do_GET(self):
        arrived = time.time()
        self._read_body()
        sink = self.server.sink
        if self.path.split("?")[0] == ACCOUNT_PATH:
            sink._record(SinkCall(arrived, "GetAccount", 200, ""))
            self._answer(200, sink._account())
            return
        sink._record(SinkCall(arrived, f"GET {self.path}", 404, "NotFoundException"))
        self._error(404, "NotFoundException", "No such resource.")

    def do_POST(self):
        sink = self.server.sink
        if self.path.split("?")[0] == SEND_PATH:
            sink._held_up()
        arrived = time.time()
        body = self._read_body()
        if self.path.split("?")[0] != SEND_PATH:
            sink._record(SinkCall(arrived, f"POST {self.path}", 404, "NotFoundException"))
            self._error(404, "NotFoundException", "No such resource.")
            return
        sink._begin()
        try:
            status, payload, error = sink._send_email(arrived, body)
            if sink.latency:
                time.sleep(sink.latency)
        finally:
            sink._end()
        if error:
            self._error(status, error, payload["message"])
        else:
            self._answer(status, payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, sink: "SesSink") -> None:
        self.sink = sink
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        # A client that went away mid-answer (a killed worker, a read timeout) is not the sink's problem.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class SesSink:
    """A threaded SESv2 endpoint on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        max_send_rate: float = 14.0,
        *,
        throttle_fraction: float = 0.0,
        throttle_code: str = "TooManyRequestsException",
        enforce_rate: bool = False,
        latency: float = 0.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if throttle_code not in THROTTLE_ERRORS:
            raise ValueError(f"throttle_code must be one of {sorted(THROTTLE_ERRORS)}")
        self.max_send_rate = max_send_rate
        self.max_24_hour_send = 1_000_000.0
        self.throttle_fraction = throttle_fraction
        self.throttle_code = throttle_code
        self.enforce_rate = enforce_rate
        self.latency = latency
        self.held_up = (0.0, 0.0)  # (share of SendEmail calls, seconds): see hold_up
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._calls: list[SinkCall] = []
        self._messages: list[SinkMessage] = []
        self._rejected: set[str] = set()
        self._failures: deque[tuple[int, str, str]] = deque()
        self._recent: deque[float] = deque()
        self._arrived = threading.Condition(self._lock)
        self._in_progress = 0
        self.most_in_progress = 0  # the most SendEmail calls being answered at one time
        self._server = _Server((host, port), self)
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "SesSink":
        self._thread = threading.Thread(target=self._server.serve_forever, name="ses-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "SesSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- configuration -------------------------------------------------------------------------
    def reject(self, *addresses: str) -> None:
        """Answer MessageRejected for these recipients."""
        with self._lock:
            self._rejected.update(address.lower() for address in addresses)

    def set_throttle(self, fraction: float, code: str | None = None) -> None:
        with self._lock:
            self.throttle_fraction = fraction
            if code is not None:
                if code not in THROTTLE_ERRORS:
                    raise ValueError(f"code must be one of {sorted(THROTTLE_ERRORS)}")
                self.throttle_code = code

    def hold_up(self, fraction: float, seconds: float) -> None:
        """That share of SendEmail calls arrives `seconds` late (stamped and answered that much later)."""
        with self._lock:
            self.held_up = (fraction, seconds)

    def fail_next(self, count: int, status: int = 500, code: str = "InternalFailure", message: str = "") -> None:
        """The next `count` SendEmail calls fail with this error."""
        with self._lock:
            for _ in range(count):
                self._failures.append((status, code, message or f"{code} injected by the test"))

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._messages.clear()
            self._recent.clear()
            self.most_in_progress = 0

    # --- what happened -------------------------------------------------------------------------
    @property
    def messages(self) -> list[SinkMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def calls(self) -> list[SinkCall]:
        with self._lock:
            return list(self._calls)

    def send_calls(self) -> list[SinkCall]:
        return [call for call in self.calls if call.operation == "SendEmail"]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[SinkMessage]:
        """Block until at least `count` messages were accepted; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the sink accepted {len(self._messages)} of {count} messages in {timeout} s")
                self._arrived.wait(remaining)
            return list(self._messages)

    def max_in_window(self, window: float = 1.0, accepted_only: bool = True) -> int:
        """The most SendEmail arrivals inside any `window`-second interval (closed at both ends)."""
        times = [message.at for message in self.messages] if accepted_only else [c.at for c in self.send_calls()]
        return most_in_any_window(times, window)

    # --- the API -------------------------------------------------------------------------------
    def _held_up(self) -> None:
        with self._lock:
            fraction, seconds = self.held_up
            late = fraction > 0 and self._random.random() < fraction
        if late:
            time.sleep(seconds)

    def _begin(self) -> None:
        with self._lock:
            self._in_progress += 1
            self.most_in_progress = max(self.most_in_progress, self._in_progress)

    def _end(self) -> None:
        with self._lock:
            self._in_progress -= 1

    def _record(self, call: SinkCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _account(self) -> dict:
        with self._lock:
            sent = float(len(self._messages))
        return {
            "DedicatedIpAutoWarmupEnabled": False,
            "EnforcementStatus": "HEALTHY",
            "ProductionAccessEnabled": True,
            "SendQuota": {
                "Max24HourSend": self.max_24_hour_send,
                "MaxSendRate": float(self.max_send_rate),
                "SentLast24Hours": sent,
            },
            "SendingEnabled": True,
        }

    def _send_email(self, arrived: float, body: bytes) -> tuple[int, dict, str]:
        try:
            request = json.loads(body or b"{}")
            raw = base64.b64decode(request["Content"]["Raw"]["Data"], validate=True)
            to = tuple(str(a) for a in (request.get("Destination") or {}).get("ToAddresses") or ())
            sender = str(request.get("FromEmailAddress") or "")
        except (ValueError, KeyError, TypeError, binascii.Error):
            self._record(SinkCall(arrived, "SendEmail", 400, "BadRequestException"))
            return 400, {"message": "SendEmail needs Content.Raw.Data (base64)."}, "BadRequestException"
        if not to:
            parsed = message_from_bytes(raw, policy=policy.default)
            to = tuple(str(a.addr_spec) for a in getattr(parsed["To"], "addresses", ()))
        with self._lock:
            error = self._decide(arrived, to)
            status = error[0] if error else 200
            self._calls.append(SinkCall(arrived, "SendEmail", status, error[1] if error else "", to))
            if error:
                return error[0], {"message": error[2]}, error[1]
            message_id = f"{uuid.uuid4().hex[:16]}-{uuid.uuid4()}-000000"
            parsed_set = message_from_bytes(raw, policy=policy.default)["X-SES-CONFIGURATION-SET"]
            self._messages.append(SinkMessage(message_id, arrived, sender, to, raw, parsed_set))
            self._recent.append(arrived)
            self._arrived.notify_all()
        return 200, {"MessageId": message_id}, ""

    def _decide(self, arrived: float, to: tuple[str, ...]) -> tuple[int, str, str] | None:
        """The error to answer, if any (called with the lock held)."""
        if self._failures:
            return self._failures.popleft()
        if self.throttle_fraction and self._random.random() < self.throttle_fraction:
            status, message = THROTTLE_ERRORS[self.throttle_code]
            return status, self.throttle_code, message
        if self.enforce_rate:
            while self._recent and arrived - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.max_send_rate:
                return 400, "Throttling", "Maximum sending rate exceeded."
        rejected = [address for address in to if address.lower() in self._rejected]
        if rejected:
            return 400, "MessageRejected", f"Email address is not verified or is suppressed: {rejected[0]}"
        return None
