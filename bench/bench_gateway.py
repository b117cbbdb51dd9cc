"""What one request costs the gateway: CPU milliseconds per request in front of a precomputed upstream.

Run: ``.venv/bin/python bench/bench_gateway.py [--servers serve,serve-w2,uvicorn,hypercorn,gevent]
[--requests small,claude-code,non-streaming] [--clients 16,64] [--duration 4] [--warm 1] [--windows 4]``
(``make bench-gateway``; about three minutes).

The upstream is ``bench/precomputed_upstream.py``: every ``generateAssistantResponse`` gets the
same ready-made 50-frame EventStream body, chunked like Kiro's, with no work per request, so the
only thing that varies is the gateway. Each way of serving runs in its own process with one
account; the load generator (``bench/loadgen.py``, keep-alive HTTP/1.1 clients) sends one kind of
request again and again (``bench/gateway_requests.py``: ``small`` "Hello there" streamed,
``claude-code`` Claude Code's 76 KB first turn streamed, ``non-streaming``).

For each server, request and client count it prints, over a counted window after a warm-up:

* ``cpu ms/req``: the CPU time (user + system) the serving process and its children spent, as the
  kernel counts it (/proc), divided by the answers completed meanwhile; the counted time is cut
  into ``--windows`` parts and the median part is shown, with the range, because other work on
  the machine inflates the figure while it runs (caches, shared cores). This is the figure to
  compare; for ``serve-w2`` (``kiro2api serve --workers 2``, state in SQLite) it is the
  supervisor's and both workers' CPU together;
* ``req/s`` and the latency of a whole answer (p50, p99): these depend on what else the two cores
  are doing (the load generator and the upstream share them) and drift.

The upstream alone is measured first, as a check that it is not the bottleneck. This script
reports; it does not assert. The figures of record are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulator import gateway_environment
from bench.bench_adapters import PYTHON, SERVERS, _post, base_env, cpu_seconds, free_port, process
from bench.gateway_requests import REQUESTS, BenchRequest
from bench.loadgen import LoadResult, run_load

TOKEN = "bench-client-token-0123456789"

#: Ways of serving this benchmark knows: bench_adapters' servers, and ``serve`` with workers.
GATEWAYS: dict[str, list[str]] = {
    **SERVERS,
    "serve-w2": [*SERVERS["serve"], "--workers", "2"],
}
DEFAULT_SERVERS = ("serve", "serve-w2", "uvicorn", "hypercorn", "gevent")
#: Workers share account state through a store; memory:// would give each its own (docs/workers.md).
SHARED_STATE = ("serve-w2",)


@dataclass(frozen=True)
class Cell:
    """One measurement: the load's result and the server's CPU per request in each window."""

    result: LoadResult
    #: CPU milliseconds per answer of each counted window, in order.
    cpu_ms: tuple[float, ...]

    @property
    def median_cpu_ms(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else float("nan")


def measure(port: int, pid: int, request: BenchRequest, clients: int, warm: float, duration: float, windows: int) -> Cell:
    """Load the server at ``port`` and read process ``pid``'s CPU clock at every window boundary."""
    marks: list[float] = []
    result = run_load(port, request, clients, warm=warm, duration=duration, windows=windows,
                      on_window=lambda boundary: marks.append(cpu_seconds(pid)))
    per: list[float] = []
    for i in range(windows):
        answers = result.boundaries[i + 1] - result.boundaries[i]
        if answers:
            per.append((marks[i + 1] - marks[i]) * 1000 / answers)
    return Cell(result, tuple(per))


def _row(name: str, request: str, clients: int, cell: Cell) -> str:
    result = cell.result
    spread = f"{min(cell.cpu_ms):.2f}-{max(cell.cpu_ms):.2f}" if cell.cpu_ms else "-"
    line = (
        f"{name:<10} {request:<14} {clients:>7} {cell.median_cpu_ms:>10.2f} {spread:>11} {result.rate:>8.0f}"
        f" {result.percentile_ms(0.5):>8.1f} {result.percentile_ms(0.99):>8.1f} {result.answers:>7} {result.errors:>6}"
    )
    return line + (f"  first error: {result.first_error}" if result.errors else "")


def measure_request(name: str, port: int, pid: int, request: BenchRequest, levels: Sequence[int], args: argparse.Namespace) -> None:
    """Every client count of one request against one server, a row each."""
    headers = {**request.headers, "x-api-key": TOKEN}
    status, answer = _post(port, request.target, request.body, headers)  # warm-up: refresh, caches
    if status != 200 or request.expect not in answer[-2000:]:
        print(f"{name} {request.name}: warm-up answered HTTP {status} {answer[:300]!r}; skipped", flush=True)
        return
    keyed = BenchRequest(request.name, request.target, headers, request.body, request.expect)
    for clients in levels:
        cell = measure(port, pid, keyed, clients, args.warm, args.duration, args.windows)
        print(_row(name, request.name, clients, cell), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                        help=f"ways of serving, of {','.join(GATEWAYS)} (default {','.join(DEFAULT_SERVERS)})")
    parser.add_argument("--requests", default=",".join(REQUESTS), help=f"default {','.join(REQUESTS)}")
    parser.add_argument("--clients", default="16,64", help="comma-separated concurrent clients (default 16,64)")
    parser.add_argument("--duration", type=float, default=4.0, help="counted seconds per cell (default 4)")
    parser.add_argument("--windows", type=int, default=4,
                        help="parts of the counted time with their own CPU figure; the median is reported (default 4)")
    parser.add_argument("--warm", type=float, default=1.0, help="uncounted seconds before each cell (default 1)")
    parser.add_argument("--frames", type=int, default=50, help="text frames per upstream answer (default 50)")
    parser.add_argument("--no-upstream-row", action="store_true", help="skip measuring the upstream alone")
    parser.add_argument("--profile", metavar="DIR",
                        help="run each server under py-spy (pip install py-spy into the venv) and write its"
                             " raw sampled stacks to DIR/<server>.txt; the CPU figures then include py-spy's")
    args = parser.parse_args(argv)
    servers = args.servers.split(",")
    requests = [REQUESTS[name] for name in args.requests.split(",")]
    levels = [int(n) for n in args.clients.split(",")]
    unknown = [s for s in servers if s not in GATEWAYS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}")

    print(f"CPU ms per request of the server process tree (/proc): the median of {args.windows} windows and their"
          f" range; req/s; latency of whole answers; {args.duration:g} s counted after {args.warm:g} s warm-up per cell")
    print(f"{'server':<10} {'request':<14} {'clients':>7} {'cpu ms/req':>10} {'range':>11} {'req/s':>8} {'p50 ms':>8}"
          f" {'p99 ms':>8} {'answers':>7} {'errors':>6}")
    up_port = free_port()
    up_command = [PYTHON, "-m", "bench.precomputed_upstream", "--port", str(up_port), "--frames", str(args.frames)]
    with process("precomputed upstream", up_command, up_port, base_env()) as up_pid:
        up_url = f"http://127.0.0.1:{up_port}"
        if not args.no_upstream_row:
            kiro_call = BenchRequest("kiro", "/generateAssistantResponse",
                                     {"content-type": "application/x-amz-json-1.0", "authorization": "Bearer x"},
                                     json.dumps({"conversationState": {}}).encode(), b"\x00")
            for clients in levels:
                cell = measure(up_port, up_pid, kiro_call, clients, args.warm, args.duration, args.windows)
                print(_row("upstream", "kiro body", clients, cell), flush=True)
        env = base_env() | gateway_environment(up_url) | {
            "KIRO_CLIENT_TOKEN": TOKEN, "KIRO_STATE": "memory://", "LOG_LEVEL": "WARNING",
        }
        for name in servers:
            with tempfile.TemporaryDirectory() as state:
                port = free_port()
                command = [p.replace("{port}", str(port)) for p in GATEWAYS[name]]
                if args.profile:
                    Path(args.profile).mkdir(parents=True, exist_ok=True)
                    out = Path(args.profile).resolve() / f"{name}.txt"
                    command = [str(Path(PYTHON).parent / "py-spy"), "record", "-r", "250", "-f", "raw",
                               "-o", str(out), "--", *command]
                shared = {"KIRO_STATE": f"sqlite:///{state}/state.db"} if name in SHARED_STATE else {}
                try:
                    serving = process(name, command, port, env | shared, wrapped=bool(args.profile))
                    pid = serving.__enter__()
                except RuntimeError as exc:
                    print(f"{name}: did not start ({str(exc)[-300:]}); skipped", flush=True)
                    continue
                with contextlib.ExitStack() as stack:
                    stack.push(serving)
                    for request in requests:
                        measure_request(name, port, pid, request, levels, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
