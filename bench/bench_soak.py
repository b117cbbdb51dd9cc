"""The soak (issue 18): many slow streams at once, several rounds; does every stream complete, and
do memory and file descriptors come back after each round?

Run: ``.venv/bin/python bench/bench_soak.py [--streams 1000] [--rounds 3] [--servers serve,uvicorn]
[--frames 40] [--pace-ms 250] [--state sqlite|memory]``.

The simulator is the upstream; each answer is ``--frames`` text frames ``--pace-ms`` apart (the
``[[sim:long]]`` and ``[[sim:slow]]`` markers), so a stream lasts frames x pace (10 s by default)
and all ``--streams`` of a round are open at the same time. Each way of serving runs in its own
process in front of it, with the default settings (``KIRO_MAX_CONNECTIONS_PER_ACCOUNT`` 100: the
accounts are enough for every stream, taken round robin) and a fresh SQLite state file each (the
default store: with ``--state memory`` the usage records of every request stay in the process,
about 1 MiB more per 1,000 requests, which the rounds then show as growth). The clients are raw HTTP/1.1
connections in this process, each reading its answer to the end: a stream completes when it is a
200 that ends with ``message_stop``.

For each round the script prints the streams completed, the most open at once, the server's
resident memory (VmRSS, the process and its children) and open file descriptors (/proc/PID/fd) at
their peak during the round and once the round is over and the server has settled, and then
whether the after-round figures of the later rounds are within 10 % of the first round's. Issue 17
asks for 1,000 held streams in under 100 MB per process: the peak RSS column. This script reports;
it does not assert. The figures of record are in docs/performance.md ("Memory and soak").

Linux only (/proc). The open-file limit of this process (and so of the servers it starts) is
raised to its hard limit: 1,000 streams need about 3,000 descriptors over the three processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.simulator import gateway_environment
from bench.bench_adapters import PYTHON, SERVERS, base_env, free_port, process, process_tree, rss_mib

TOKEN = "bench-client-token-0123456789"
#: How often the server is sampled during a round (seconds).
SAMPLE_EVERY = 0.2
#: How long a finished round is left to settle before the after-round sample (seconds).
SETTLE = 2.0
#: The within-this-much-of-round-1 mark of issue 18.
TOLERANCE = 0.10


def raise_open_file_limit() -> int:
    """Raise this process's soft limit of open files to the hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid`` and its descendants (-1 where /proc cannot tell)."""
    total = 0
    seen = False
    for current in process_tree(pid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{current}/fd"))
            seen = True
    return total if seen else -1


@dataclass
class Round:
    """What one round of streams did to the server."""

    streams: int
    completed: int = 0
    failed: int = 0
    #: Streams that got their first byte and had not ended, at most (all of them: they overlapped).
    peak_open: int = 0
    peak_rss: float = 0.0
    peak_fds: int = 0
    after_rss: float = 0.0
    after_fds: int = 0
    #: /proc/PID/status at the peak RSS sample: where the resident memory is (anonymous or file
    #: pages) and how many threads the server runs.
    peak_detail: str = ""
    #: The first failures, for the report.
    problems: list[str] = field(default_factory=list)


def memory_detail(pid: int) -> str:
    """Anonymous and file-backed resident memory and the thread count of ``pid`` (Linux)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.strip()

    def mib(name: str) -> str:
        value = fields.get(name, "")
        return f"{int(value.split()[0]) / 1024:.1f}" if value else "?"

    return f"anon {mib('RssAnon')} MiB, file {mib('RssFile')} MiB, shmem {mib('RssShmem')} MiB, {fields.get('Threads', '?')} threads"


def _head(port: int, body: bytes) -> bytes:
    lines = [
        "POST /v1/messages HTTP/1.1",
        f"host: 127.0.0.1:{port}",
        "content-type: application/json",
        "anthropic-version: 2023-06-01",
        f"x-api-key: {TOKEN}",
        "connection: close",
        f"content-length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _soak_round(port: int, pid: int, request: bytes, streams: int, timeout: float) -> Round:
    """Open ``streams`` streams at once and read each to its end, sampling the server meanwhile."""
    result = Round(streams=streams)
    open_now = 0
    finished = asyncio.Event()
    remaining = streams

    async def one() -> None:
        nonlocal open_now, remaining
        counted = False
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                await writer.drain()
                received = bytearray()
                while True:
                    piece = await reader.read(65536)
                    if not piece:
                        break
                    if not counted:
                        counted = True
                        open_now += 1
                        result.peak_open = max(result.peak_open, open_now)
                    received += piece
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if received.startswith(b"HTTP/1.1 200") and b"event: message_stop" in received:
                result.completed += 1
            else:
                result.failed += 1
                if len(result.problems) < 3:
                    result.problems.append(bytes(received[:200]).decode(errors="replace"))
        except (OSError, asyncio.IncompleteReadError) as exc:
            result.failed += 1
            if len(result.problems) < 3:
                result.problems.append(repr(exc))
        finally:
            if counted:
                open_now -= 1
            remaining -= 1
            if remaining == 0:
                finished.set()

    async def sample() -> None:
        while not finished.is_set():
            rss = rss_mib(pid)
            if rss > result.peak_rss:
                result.peak_rss, result.peak_detail = rss, memory_detail(pid)
            result.peak_fds = max(result.peak_fds, open_fds(pid))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(finished.wait(), SAMPLE_EVERY)

    sampler = asyncio.create_task(sample())
    tasks = [asyncio.create_task(one()) for _ in range(streams)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:  # a hang guard, not a measurement: counted as failures
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        result.problems.append(f"{len(pending)} streams still open after {timeout:g} s")
        finished.set()
    await sampler
    await asyncio.sleep(SETTLE)
    result.after_rss = rss_mib(pid)
    result.after_fds = open_fds(pid)
    return result


def soak(port: int, pid: int, request: bytes, streams: int, rounds: int, timeout: float) -> tuple[float, int, list[Round]]:
    """The server's RSS and fds before the first round, and each round's figures."""
    before = (rss_mib(pid), open_fds(pid))
    results = [asyncio.run(_soak_round(port, pid, request, streams, timeout)) for _ in range(rounds)]
    return before[0], before[1], results


def _change(value: float, first: float) -> str:
    if first <= 0:
        return "n/a"
    share = (value - first) / first
    return f"{share * 100:+.1f} % ({'within' if abs(share) <= TOLERANCE else 'NOT within'} 10 %)"


def report(name: str, before_rss: float, before_fds: int, results: Sequence[Round]) -> None:
    print(f"\n{name}: before the first round {before_rss:.1f} MiB resident, {before_fds} fds open")
    print("round  streams  completed  failed  peak open  peak RSS MiB  RSS after MiB  peak fds  fds after")
    for i, r in enumerate(results, 1):
        print(f"{i:>5}  {r.streams:>7}  {r.completed:>9}  {r.failed:>6}  {r.peak_open:>9}  {r.peak_rss:>12.1f}"
              f"  {r.after_rss:>13.1f}  {r.peak_fds:>8}  {r.after_fds:>9}")
        if r.peak_detail:
            print(f"       at the peak: {r.peak_detail}")
        for problem in r.problems:
            print(f"       problem: {problem!r}")
    first = results[0]
    for i, r in enumerate(results[1:], 2):
        print(f"  round {i} against round 1: RSS after {_change(r.after_rss, first.after_rss)}, "
              f"fds after {_change(r.after_fds, first.after_fds)}, peak RSS {_change(r.peak_rss, first.peak_rss)}")
    every = all(r.completed == r.streams for r in results)
    print(f"  every stream completed: {'yes' if every else 'NO'}; "
          f"peak RSS {max(r.peak_rss for r in results):.1f} MiB = {max(r.peak_rss for r in results) * 1.048576:.1f} MB "
          f"with up to {max(r.peak_open for r in results)} streams open")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=1000, help="streams open at once per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument("--servers", default="serve,uvicorn", help=f"which of {','.join(SERVERS)} (default serve,uvicorn)")
    parser.add_argument("--frames", type=int, default=40, help="text frames per answer (default 40)")
    parser.add_argument("--pace-ms", type=int, default=250, help="pause between frames (default 250 ms)")
    parser.add_argument("--state", choices=("sqlite", "memory"), default="sqlite",
                        help="the servers' KIRO_STATE: a fresh SQLite file each (default) or memory://")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="hang guard per round in seconds (default: the stream's length + 120 s)")
    args = parser.parse_args(argv)
    limit = raise_open_file_limit()
    print(f"soak: {args.streams} streams at once x {args.rounds} rounds, each {args.frames} frames "
          f"{args.pace_ms} ms apart ({args.frames * args.pace_ms / 1000:g} s); {args.state} state; "
          f"open-file limit {limit}")
    if limit < 3 * args.streams + 100:
        print(f"  warning: {limit} open files may be too few for {args.streams} streams (client, server, upstream)")
    timeout = args.timeout or args.frames * args.pace_ms / 1000 + 120
    prompt = f"[[sim:long:{args.frames}]] [[sim:slow:{args.pace_ms}]] soak"
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    sim_port = free_port()
    sim_command = [PYTHON, "-m", "adapters.simulator", "--port", str(sim_port), "--pace-ms", "0",
                   "--history", "10", "--log-level", "WARNING"]
    with process("simulator", sim_command, sim_port, base_env()), tempfile.TemporaryDirectory() as scratch:
        sim_url = f"http://127.0.0.1:{sim_port}"
        # Enough accounts for every stream at the default 100 upstream connections per account.
        accounts: list[dict[str, object]] = [{"auth": "Social", "refreshToken": f"aorAAAAAG-soak-account-{i:03d}"}
                                             for i in range(-(-args.streams // 100) + 1)]
        env = base_env() | gateway_environment(sim_url, accounts=accounts) | {
            "KIRO_CLIENT_TOKEN": TOKEN, "LOG_LEVEL": "WARNING", "TOKEN_SELECTION_STRATEGY": "round_robin",
        }
        for name in args.servers.split(","):
            state = f"sqlite:///{scratch}/{name}-state.db" if args.state == "sqlite" else "memory://"
            env["KIRO_STATE"] = state
            port = free_port()
            command = [p.replace("{port}", str(port)) for p in SERVERS[name]]
            started = time.monotonic()
            with process(name, command, port, env) as pid:
                before_rss, before_fds, results = soak(port, pid, _head(port, body), args.streams, args.rounds, timeout)
            report(f"{name} (pid {pid}, {time.monotonic() - started:.0f} s)", before_rss, before_fds, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
