"""The WSGI adapter called directly with an environ (plain threads; gevent runs in the conformance suite)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.runtime._sync import _anyio
from adapters.runtime._sync.app import Request, RequestContext, Responder
from adapters.runtime._sync.basic_service import BasicService
from adapters.runtime.settings import Settings
from adapters.wsgi_gevent import KiroWSGI, create_app

pytestmark = pytest.mark.timeout(20)

TOKEN = "wsgi-test-token-0123456789"


class ScriptedService(BasicService):
    """``/v1/messages`` streams a chunk, waits for ``release`` between chunks, then ends (or hangs)."""

    def __init__(self, *, chunks: int = 3, hang: bool = False) -> None:
        super().__init__()
        self.chunks = chunks
        self.hang = hang
        self.release = threading.Semaphore(0)
        self.cancelled = threading.Event()
        self.bodies: list[bytes] = []

    def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
        self.bodies.append(request.body)
        respond.start_stream(200, [("content-type", "text/event-stream"), ("connection", "keep-alive")])
        try:
            for i in range(self.chunks):
                if i:
                    self.release.acquire()
                respond.send_chunk(f"data: {i}\n\n".encode())
            if self.hang:
                _anyio.sleep(60)
        except _anyio.Cancelled:
            self.cancelled.set()
            raise
        respond.end_stream()


class Started:
    status: str = ""
    headers: dict[str, str]

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status = status
        self.headers = dict(headers)
        self.pairs = headers
        return lambda data: None


def environ(
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    script_name: str = "",
    query: str = "",
    chunked: bool = False,
) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    if body and not chunked:
        env["CONTENT_LENGTH"] = str(len(body))
    if chunked:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    for name, value in headers:
        key = name.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    return env


def make_app(service: BasicService | None = None, **overrides: object) -> KiroWSGI:
    values: dict[str, object] = {"client_token": TOKEN, "max_request_body_bytes": 1000}
    values.update(overrides)
    return create_app(Settings(**values), service=service or ScriptedService())  # type: ignore[arg-type]


def call(app: KiroWSGI, env: dict[str, Any]) -> tuple[Started, bytes]:
    started = Started()
    result = app(env, started)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started, body


def test_health_models_auth_404_request_id_and_cors() -> None:
    app = make_app()
    started, body = call(app, environ("GET", "/health"))
    assert started.status == "200 OK" and json.loads(body)["status"] == "ok"
    assert started.headers["x-request-id"].startswith("req_")
    assert started.headers["access-control-allow-origin"] == "*"
    assert started.headers["content-length"] == str(len(body))
    started, body = call(app, environ("GET", "/v1/models"))
    assert started.status == "401 Unauthorized" and json.loads(body)["error"]["type"] == "authentication_error"
    started, body = call(app, environ("GET", "/v1/models", [("authorization", f"Bearer {TOKEN}")], query="beta=true"))
    assert started.status == "200 OK" and json.loads(body)["data"]
    started, _ = call(app, environ("GET", "/nowhere", [("x-api-key", TOKEN)]))
    assert started.status == "404 Not Found"
    started, _ = call(app, environ("GET", "/health", [("x-request-id", "wsgi-id-7")]))
    assert started.headers["x-request-id"] == "wsgi-id-7"


def test_mounted_under_a_script_name_routes_on_path_info() -> None:
    started, _ = call(make_app(), environ("GET", "/v1/models", [("x-api-key", TOKEN)], script_name="/kiro"))
    assert started.status == "200 OK"


def test_head_keeps_the_length_without_a_body() -> None:
    app = make_app()
    _, get = call(app, environ("GET", "/"))
    started, body = call(app, environ("HEAD", "/"))
    assert body == b"" and started.headers["content-length"] == str(len(get)) != "0"


def test_declared_body_over_the_limit_is_413_unread() -> None:
    env = environ("POST", "/v1/messages", [("x-api-key", TOKEN)], b"x" * 5000)
    started, body = call(make_app(), env)
    assert started.status == "413 Request Entity Too Large"
    assert json.loads(body)["error"]["type"] == "request_too_large"
    assert env["wsgi.input"].tell() == 0


def test_chunked_body_over_the_limit_stops_at_the_limit() -> None:
    env = environ("POST", "/v1/messages", [("x-api-key", TOKEN)], b"x" * 50000, chunked=True)
    started, _ = call(make_app(), env)
    assert started.status.startswith("413")
    assert env["wsgi.input"].tell() <= 1001


def test_chunked_body_within_the_limit_is_read() -> None:
    service = ScriptedService(chunks=1)
    started, _ = call(make_app(service), environ("POST", "/v1/messages", [("x-api-key", TOKEN)], b"abc", chunked=True))
    assert started.status == "200 OK" and service.bodies == [b"abc"]


def test_stream_yields_each_chunk_as_soon_as_produced_without_hop_by_hop_headers() -> None:
    service = ScriptedService(chunks=3)
    started = Started()
    result = app_result = make_app(service)(environ("POST", "/v1/messages", [("x-api-key", TOKEN)]), started)
    assert started.status == "200 OK"
    assert "connection" not in {k.lower() for k, _ in started.pairs}
    assert "content-length" not in started.headers
    iterator = iter(result)
    assert next(iterator) == b"data: 0\n\n"  # before the service was allowed to produce the next one
    service.release.release()
    assert next(iterator) == b"data: 1\n\n"
    service.release.release()
    assert list(iterator) == [b"data: 2\n\n"]
    getattr(app_result, "close")()


def test_close_mid_stream_cancels_the_handler() -> None:
    service = ScriptedService(chunks=1, hang=True)
    result = make_app(service)(environ("POST", "/v1/messages", [("x-api-key", TOKEN)]), Started())
    iterator = iter(result)
    assert next(iterator) == b"data: 0\n\n"
    t0 = time.monotonic()
    getattr(result, "close")()
    assert service.cancelled.wait(2)
    assert time.monotonic() - t0 < 1.0


def test_a_handler_that_breaks_mid_stream_breaks_the_body() -> None:
    class Broken(BasicService):
        def messages(self, request: Request, respond: Responder, ctx: RequestContext) -> None:
            respond.start_stream(200, [("content-type", "text/event-stream")])
            respond.send_chunk(b"data: 0\n\n")
            raise ValueError("bug")

    result = make_app(Broken())(environ("POST", "/v1/messages", [("x-api-key", TOKEN)]), Started())
    iterator: Iterable[bytes] = iter(result)
    with pytest.raises(RuntimeError, match="without finishing"):
        list(iterator)


def test_session_limit_answers_529() -> None:
    service = ScriptedService(chunks=1, hang=True)
    app = make_app(service, max_concurrent_sessions=1)
    first = app(environ("POST", "/v1/messages", [("x-api-key", TOKEN)]), Started())
    next(iter(first))
    started, body = call(app, environ("POST", "/v1/messages", [("x-api-key", TOKEN)]))
    getattr(first, "close")()
    assert started.status == "529 Overloaded" and json.loads(body)["error"]["type"] == "overloaded_error"


def test_openai_route_errors_use_the_openai_shape() -> None:
    started, body = call(make_app(BasicService()), environ("POST", "/v1/chat/completions", [("x-api-key", TOKEN)]))
    error = json.loads(body)["error"]
    assert started.status.startswith("501") and "code" in error


def test_close_ends_streams_and_refuses_new_sessions() -> None:
    app = make_app()
    app.close()
    started, body = call(app, environ("POST", "/v1/messages", [("x-api-key", TOKEN)]))
    assert started.status == "529 Overloaded"
    started, _ = call(app, environ("GET", "/health"))
    assert started.status == "503 Service Unavailable"


def test_importing_the_package_loads_neither_gevent_nor_the_runtime() -> None:
    # ``python -m adapters.wsgi_gevent`` imports the package before ``__main__`` patches: nothing
    # that holds threading primitives may be imported by then.
    import subprocess
    import sys

    code = (
        "import sys, adapters.wsgi_gevent as w; "
        "loaded = [m for m in ('gevent', 'adapters.runtime._sync._anyio', 'httpcore', 'ssl') if m in sys.modules]; "
        "assert not loaded, loaded; "
        "assert callable(w.create_app)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_gevent_entry_point_refuses_tls_settings_and_bad_settings(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "VIRTUAL_ENV")}
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("not used")
    env.update({"KIRO_CLIENT_TOKEN": TOKEN, "TLS_CERT_FILE": str(tmp_path / "cert.pem"), "TLS_KEY_FILE": str(tmp_path / "key.pem")})
    command = [sys.executable, "-m", "adapters.wsgi_gevent", "--port", "0"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "no TLS" in done.stderr
    env.pop("TLS_CERT_FILE")
    env.pop("TLS_KEY_FILE")
    env["PORT"] = "not-a-port"
    done = subprocess.run(command[:3], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "PORT" in done.stderr and "Traceback" not in done.stderr


def test_the_gevent_entry_point_help_lists_every_setting() -> None:
    import subprocess
    import sys

    from adapters.runtime.settings import SETTINGS

    done = subprocess.run(
        [sys.executable, "-m", "adapters.wsgi_gevent", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert all(spec.env in done.stdout for spec in SETTINGS)


def test_exec_server_hands_over_to_a_fresh_gevent_process() -> None:
    import subprocess
    import sys

    code = "from adapters.wsgi_gevent.__main__ import exec_server; exec_server(['--help'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m adapters.wsgi_gevent")
