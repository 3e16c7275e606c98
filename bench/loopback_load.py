"""A closed-loop HTTP load generator for loopback benchmarks that costs the shared CPUs little.

Each client is a keep-alive connection with one request in flight: its next request leaves as soon
as its response is complete. All clients run on one thread over non-blocking sockets, and a request
is bytes built once, so a request costs a `send`, a `recv` and a header scan. A client per thread
(even the standard library's `http.client`) spent enough CPU parsing to take a core from the server
it measured, and its threads queued behind each other for the GIL: at four clients on two CPUs the
figures were the generator's.
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field

_HEADER_END = b"\r\n\r\n"


@dataclass
class LoadResult:
    """Each answered request's latency in milliseconds, the non-200 answers, and the wall time."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0


@dataclass
class _Client:
    sock: socket.socket
    left: int  # requests still to send
    next_body: int
    sent_at: float = 0.0
    buffer: bytearray = field(default_factory=bytearray)


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    """One HTTP/1.1 POST of a JSON body on a keep-alive connection."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def complete_response(buffer: bytearray) -> tuple[int, int] | None:
    """(status, length) of the response at the head of `buffer` once all of it has arrived."""
    end = buffer.find(_HEADER_END)
    if end < 0:
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            raise ValueError(
                f"the server answered with transfer-encoding {value.strip()!r}; expected a length"
            )
    if length is None:
        raise ValueError("the server's response has no content-length")
    total = end + len(_HEADER_END) + length
    return (status, total) if len(buffer) >= total else None


def closed_loop(
    host: str, port: int, path: str, bodies: list[bytes], requests: int, clients: int, time_cap_s: float
) -> LoadResult:
    """`requests` POSTs of `bodies` (in turn) over `clients` connections, one in flight on each,
    stopping early at `time_cap_s`."""
    payloads = [request_bytes(host, port, path, body) for body in bodies]
    selector = selectors.DefaultSelector()
    result = LoadResult()
    connections: list[_Client] = []
    started = time.perf_counter()
    deadline = started + time_cap_s
    try:
        for number in range(clients):
            sock = socket.create_connection((host, port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(sock, left=requests // clients, next_body=number)
            connections.append(client)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, client)
            _send(client, payloads)
        in_flight = len(connections)
        while in_flight and time.perf_counter() < deadline:
            for key, _ in selector.select(timeout=1.0):
                client = key.data
                chunk = client.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed a keep-alive connection")
                client.buffer += chunk
                answer = complete_response(client.buffer)
                if answer is None:
                    continue
                status, length = answer
                result.latencies_ms.append((time.perf_counter() - client.sent_at) * 1000)
                result.errors += status != 200
                del client.buffer[:length]
                if client.left:
                    _send(client, payloads)
                else:
                    selector.unregister(client.sock)
                    in_flight -= 1
    finally:
        selector.close()
        for client in connections:
            client.sock.close()
    result.wall_s = time.perf_counter() - started
    return result


def _send(client: _Client, payloads: list[bytes]) -> None:
    """Send the client's next request whole (a small request fits a loopback socket's buffer)."""
    payload = payloads[client.next_body % len(payloads)]
    client.next_body += 1
    client.left -= 1
    client.sent_at = time.perf_counter()
    client.sock.setblocking(True)
    client.sock.sendall(payload)
    client.sock.setblocking(False)
