"""Throughput of ``kiro2api serve --workers N``: one worker against two, driven by ``hey``.

Run: ``.venv/bin/python bench/bench_workers.py [--workers 1,2] [--requests claude-code]
[--clients 16,64] [--duration 8] [--rounds 2]``.

A second worker can only help when a core is free for it. On a two-core machine the load
generator competes for the same cores, so this one uses ``hey`` (Go, Debian's ``hey`` package:
a small fraction of the CPU per request of a Python client) when it is installed, and falls back
to ``bench/loadgen.py`` otherwise (the header says which). The upstream is the same precomputed
one as ``bench_gateway.py``, and the gateway's CPU per request is counted the same way, over the
supervisor and its workers (/proc). The rounds alternate the worker counts, so drift on a busy
machine falls on both. The figures of record are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulator import gateway_environment
from bench.bench_adapters import PYTHON, _post, base_env, cpu_seconds, free_port, process
from bench.gateway_requests import REQUESTS, BenchRequest
from bench.loadgen import run_load

TOKEN = "bench-client-token-0123456789"


def _hey(port: int, request: BenchRequest, clients: int, duration: float) -> tuple[int, float, float, float, int]:
    """(answers, req/s, p50 ms, p99 ms, errors) of one ``hey`` run."""
    with tempfile.NamedTemporaryFile() as body:
        body.write(request.body)
        body.flush()
        command = ["hey", "-z", f"{duration:g}s", "-c", str(clients), "-m", "POST", "-D", body.name]
        for name, value in request.headers.items():
            command += ["-H", f"{name}: {value}"]
        out = subprocess.run([*command, f"http://127.0.0.1:{port}{request.target}"], capture_output=True,
                             text=True, check=True).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else float("nan")

    answers = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", out))
    errors = sum(int(n) for n in re.findall(r"\[\d+\]\s+(\d+) responses", out)) - answers
    if "Error distribution:" in out:  # requests that got no answer (refused, cut at the end of the run)
        errors += sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", out.split("Error distribution:")[1], re.M))
    return answers, number(r"Requests/sec:\s+([\d.]+)"), number(r"50% in ([\d.]+) secs") * 1000, number(r"99% in ([\d.]+) secs") * 1000, errors


def _cell(port: int, pid: int, request: BenchRequest, clients: int, duration: float, use_hey: bool) -> str:
    before = cpu_seconds(pid)
    if use_hey:
        answers, rate, p50, p99, errors = _hey(port, request, clients, duration)
    else:
        result = run_load(port, request, clients, warm=0, duration=duration)
        answers, rate, errors = result.answers, result.rate, result.errors
        p50, p99 = result.percentile_ms(0.5), result.percentile_ms(0.99)
    cpu = cpu_seconds(pid) - before
    per = cpu * 1000 / answers if answers else float("nan")
    return f"{clients:>7} {per:>10.2f} {rate:>8.0f} {p50:>8.1f} {p99:>8.1f} {answers:>7} {errors:>6}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--requests", default="claude-code", help=f"of {','.join(REQUESTS)} (default claude-code)")
    parser.add_argument("--clients", default="16,64", help="comma-separated concurrent clients (default 16,64)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per cell (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the worker counts (default 2)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    levels = [int(n) for n in args.clients.split(",")]
    use_hey = shutil.which("hey") is not None
    print(f"load generator: {'hey' if use_hey else 'bench/loadgen.py (hey is not installed)'};"
          f" {args.duration:g} s per cell; CPU of the supervisor and its workers (/proc)")
    print(f"{'round':<5} {'workers':>7} {'request':<12} {'clients':>7} {'cpu ms/req':>10} {'req/s':>8} {'p50 ms':>8}"
          f" {'p99 ms':>8} {'answers':>7} {'errors':>6}")
    up_port = free_port()
    up_command = [PYTHON, "-m", "bench.precomputed_upstream", "--port", str(up_port)]
    with process("precomputed upstream", up_command, up_port, base_env()):
        env = base_env() | gateway_environment(f"http://127.0.0.1:{up_port}") | {
            "KIRO_CLIENT_TOKEN": TOKEN, "LOG_LEVEL": "WARNING",
        }
        for round_ in range(1, args.rounds + 1):
            for workers in counts if round_ % 2 else reversed(counts):
                port = free_port()
                with tempfile.TemporaryDirectory() as state:
                    # SQLite, the default store, as an operator runs it: the workers share the account.
                    run_env = env | {"KIRO_STATE": f"sqlite:///{state}/state.db"}
                    command = [PYTHON, "-m", "adapters.cli", "serve", "--port", str(port), "--workers", str(workers)]
                    with process(f"serve --workers {workers}", command, port, run_env) as pid:
                        for name in args.requests.split(","):
                            request = REQUESTS[name]
                            keyed = BenchRequest(name, request.target, {**request.headers, "x-api-key": TOKEN},
                                                 request.body, request.expect)
                            for _ in range(2 * workers):  # every worker refreshed and warm
                                status, answer = _post(port, keyed.target, keyed.body, keyed.headers)
                                if status != 200 or request.expect not in answer[-2000:]:
                                    print(f"warm-up answered HTTP {status}: {json.dumps(answer[:300].decode(errors='replace'))}")
                                    return 1
                            for clients in levels:
                                row = _cell(port, pid, keyed, clients, args.duration, use_hey)
                                print(f"{round_:<5} {workers:>7} {name:<12} {row}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
