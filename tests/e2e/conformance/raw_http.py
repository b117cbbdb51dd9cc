"""A bare HTTP/1.1 client on a socket, for requests no HTTP library will send (bad framing,
pipelining, half a body) and for what happens to the connection after the answer."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

#: Hang guard for every read: an answer that does not come within it fails the test.
TIMEOUT = 10.0


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    #: Whatever arrived after this response (a pipelined answer, or nothing).
    rest: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RawConnection:
    """One TCP connection to 127.0.0.1; ``buffer`` holds bytes received and not yet parsed."""

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    eof: bool = False

    @classmethod
    def open(cls, port: int) -> RawConnection:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        """Read more; False at end of stream (a reset counts as the end)."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def response(self) -> RawResponse | None:
        """The next response, or None if the connection ended before one began."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                if self.buffer:
                    raise AssertionError(f"connection ended inside a response head: {bytes(self.buffer)[:200]!r}")
                return None
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        self.buffer[:] = rest
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            return self.response()
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked()
        else:
            while self._fill():
                pass
            body, self.buffer[:] = bytes(self.buffer), b""
        return RawResponse(status=status, headers=headers, body=body)

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise AssertionError(f"connection ended inside a body ({len(self.buffer)} of {n} bytes)")
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise AssertionError("connection ended inside a chunked body")
        line, _, rest = bytes(self.buffer).partition(b"\r\n")
        self.buffer[:] = rest
        return line

    def _chunked(self) -> bytes:
        body = bytearray()
        while size := int(self._line().split(b";")[0], 16):
            body += self._exactly(size)
            self._line()
        while self._line():
            pass
        return bytes(body)

    def closed_by_server(self) -> bool:
        """Whether the server closes the connection without sending anything more."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.buffer:
                return False
            if not self._fill():
                return True
        return False


def request_bytes(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
    length: bool = True,
) -> bytes:
    """The bytes of one request; ``length``: add ``content-length`` for a body."""
    lines = [f"{method} {path} {version}", "host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    """``pieces`` as a chunked body, with its last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
