"""The benchmarks' load generator: every request answered and timed once, errors counted, and
responses split across reads or carrying no length handled as they must be."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.loopback_load import closed_loop, complete_response


class _Echo(BaseHTTPRequestHandler):
    """Answers each POST with its body, slowly in two writes; a body of `fail` gets a 422."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the endpoint serves
    seen: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.seen.append(body)
        answer = b'{"echo": ' + body + b"}"
        self.send_response(422 if body == b'"fail"' else 200)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer[:3])  # a response in two pieces: the client must wait for the rest
        self.wfile.flush()
        self.wfile.write(answer[3:])

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    _Echo.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_every_request_is_sent_answered_and_timed_once(server: tuple[str, int]) -> None:
    host, port = server
    bodies = [b'"a"', b'"b"', b'"fail"', b'"c"']
    result = closed_loop(host, port, "/invocations", bodies, requests=40, clients=4, time_cap_s=30)
    assert len(result.latencies_ms) == 40 == len(_Echo.seen)
    assert all(latency > 0 for latency in result.latencies_ms)
    assert result.errors == _Echo.seen.count(b'"fail"') == 10  # the bodies are sent in turn
    assert result.wall_s > 0


def test_a_response_is_complete_only_with_its_whole_body() -> None:
    response = bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc")
    assert complete_response(response) is None
    response += b"de" + b"HTTP/1.1 500 Internal"  # the next response's start is not this one's
    assert complete_response(response) == (200, len(response) - len(b"HTTP/1.1 500 Internal"))


def test_a_response_without_a_length_is_refused_not_misread() -> None:
    with pytest.raises(ValueError, match="transfer-encoding"):
        complete_response(bytearray(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"))
    with pytest.raises(ValueError, match="no content-length"):
        complete_response(bytearray(b"HTTP/1.1 200 OK\r\n\r\n"))
