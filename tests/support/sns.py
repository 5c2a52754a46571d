"""SNS as the webhook sees it, made in the test: signed messages and an https server for certificates.

- `SnsSigner` holds a self-made RSA key and certificate and signs SNS messages the way SNS
  does (SignatureVersion 1: SHA1, 2: SHA256, RSA PKCS#1 v1.5 over the canonical string).
  The canonical string is built here from the AWS documentation, independently of the app.
- `HttpsFileServer` serves fixed paths over real TLS on 127.0.0.1 with its own self-signed
  certificate (written to `ca_bundle`, for AWS_SNS_CA_BUNDLE), or a 302 to another URL, and
  records each request: it
  stands in for sns.<region>.amazonaws.com (signing certificates, SubscribeURL).
- `sns_certificate_host(signer)` serves a signer's certificate; `trust_test_sns(settings, host)`
  makes the webhook trust it and TOPIC, as production settings trust SNS and the SES topic.
"""

import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_PATH = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:horoscope-ses-events"
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def _self_signed(common_name: str, *, ip: str | None = None, days: int = 2, key=None):
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1 if days > 0 else 3))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return key, builder.sign(key, hashes.SHA256())


class SnsSigner:
    """Signs SNS messages with a key of its own; `certificate_pem` is what SigningCertURL must serve."""

    def __init__(self, *, expired: bool = False) -> None:
        self.key, self.certificate = _self_signed("sns.amazonaws.com", days=-1 if expired else 2)
        self.certificate_pem = self.certificate.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def canonical(message: dict) -> bytes:
        keys = NOTIFICATION_KEYS if message["Type"] == "Notification" else CONFIRMATION_KEYS
        return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message).encode()

    def sign(self, message: dict, version: str = "1") -> dict:
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1 is SHA1
        signed = {**message, "SignatureVersion": version}
        signature = self.key.sign(self.canonical(signed), padding.PKCS1v15(), digest)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(
        self,
        message: dict | str,
        *,
        topic_arn: str,
        cert_url: str,
        version: str = "1",
        subject: str | None = None,
        message_id: str | None = None,
    ) -> dict:
        body = {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SigningCertURL": cert_url,
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
        if subject is not None:
            body["Subject"] = subject
        return self.sign(body, version)

    def subscription_confirmation(
        self, *, topic_arn: str, cert_url: str, subscribe_url: str, version: str = "1"
    ) -> dict:
        body = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": uuid.uuid4().hex * 4,
            "TopicArn": topic_arn,
            "Message": f"You have chosen to subscribe to the topic {topic_arn}.",
            "SubscribeURL": subscribe_url,
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SigningCertURL": cert_url,
        }
        return self.sign(body, version)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        with self.server.lock:
            self.server.requests.append(self.path)
            body = self.server.routes.get(self.path.split("?")[0])
            location = self.server.redirects.get(self.path.split("?")[0])
        if location is not None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address) -> None:
        self.routes: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        super().__init__(address, _Handler)


class HttpsFileServer:
    """Fixed responses over TLS on 127.0.0.1; trust it with AWS_SNS_CA_BUNDLE = server.ca_bundle."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="sns-https-")
        key, certificate = _self_signed("127.0.0.1", ip="127.0.0.1")
        cert_file = Path(self._dir.name) / "server.pem"
        key_file = Path(self._dir.name) / "server.key"
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.ca_bundle = str(cert_file)
        self._server = _Server(("127.0.0.1", 0))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sns-https", daemon=True)

    def start(self) -> "HttpsFileServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._dir.cleanup()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}{path}"

    def serve(self, path: str, body: bytes) -> str:
        with self._server.lock:
            self._server.routes[path] = body
        return self.url(path)

    def redirect(self, path: str, location: str) -> str:
        """Answer GET `path` with 302 to `location`; returns the URL of `path`."""
        with self._server.lock:
            self._server.redirects[path] = location
        return self.url(path)

    @property
    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.requests)


@contextmanager
def sns_certificate_host(signer: SnsSigner) -> Iterator[HttpsFileServer]:
    """An HttpsFileServer serving `signer`'s certificate at CERT_PATH, stopped on exit."""
    server = HttpsFileServer().start()
    server.serve(CERT_PATH, signer.certificate_pem)
    try:
        yield server
    finally:
        server.stop()


def trust_test_sns(settings, host: HttpsFileServer) -> None:
    """Point the webhook's trust at TOPIC and at `host`'s certificate (pytest-django `settings`)."""
    settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = [TOPIC]
    settings.AWS_SNS_EVENT_CERT_TRUSTED_DOMAINS = ["127.0.0.1"]
    settings.AWS_SNS_CA_BUNDLE = host.ca_bundle
