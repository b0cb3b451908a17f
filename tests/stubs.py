"""Real local servers standing in for the outside world: an SMTP sink and HTTP gateways.

They are real sockets on 127.0.0.1 (aiosmtpd for e-mail, http.server for the SMS gateway and
the credit bureau), so tests assert what actually arrived, not what a mock was told.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


class _Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """An SMTP server on a free port; `.messages` holds every e-mail that arrived."""
    sink = _Sink()
    sink.port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class HttpStub:
    """Records every request; `respond(request) -> (status, body dict)` decides the answer."""

    respond: Callable[[Request], tuple[int, Any]] = lambda request: (200, {"ok": True})
    requests: list[Request] = field(default_factory=list)
    url: str = ""


def _handler(stub: HttpStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            request = Request(self.command, self.path, dict(self.headers), body)
            stub.requests.append(request)
            status, answer = stub.respond(request)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve  # noqa: N815

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def http_stub():
    """An HTTP server on a free port recording requests; set `.respond` to shape its answers."""
    stub = HttpStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


def outside_world(settings, smtp_server, http_stub, bureau: dict[str, Any] | None = None):
    """`settings` with mail, the SMS gateway and the credit bureau on the local stubs; the
    gateway answers ok and the bureau answers `bureau` (the same dict, so a test may change it)."""
    import dataclasses

    if bureau is not None:
        http_stub.respond = lambda r: (200, {"ok": True} if r.path.startswith("/sms") else bureau)
    return dataclasses.replace(
        settings,
        smtp_port=smtp_server.port,
        sms_url=http_stub.url + "/sms",
        credit_bureau_url=http_stub.url + "/bureau",
        http_timeout=2.0,
    )
