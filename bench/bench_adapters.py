"""What each way of serving costs: kiro2api serve, ASGI under uvicorn and hypercorn, gevent.

Run: ``.venv/bin/python bench/bench_adapters.py [--quick] [--duration S] [--concurrency 1,16,64] [--http2]``.

One simulator is the upstream. Each way of serving runs in its own process in front of it;
concurrent keep-alive clients each stream the same answer again and again for ``--duration``
seconds. The same load against the simulator alone is the baseline. Two loads, two questions:

* burst (throughput): ``--frames`` text frames sent with no pause, so the machine saturates;
  streams per second against the simulator alone is what the gateway costs.
* paced (latency): ``--paced-frames`` frames ``--pace-ms`` apart, as a model writes, so nothing
  saturates; the added time to first byte is then the gateway's own delay, not a queue. (Under
  the burst load the time to first byte is mostly waiting for a busy CPU and is shown too.)

For each server, load and concurrency the script prints streams per second, time to first byte
(p50/p95), the CPU milliseconds the server process (and its children) spent per answer, as the
kernel counts them, and the ratios to the simulator alone, measured in turn with that cell (``--rounds``
alternations of the two, pooled) over the same protocol (HTTP/2 rows against the simulator over
h2c; the simulator's rows pool those baselines); then the resident memory of each server holding
``--hold`` slow streams open at once. Client, servers and simulator share the machine's cores, so
read the ratios, not the absolute numbers. This script reports; it does not assert.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio
import h2.config
import h2.connection
import h2.events
import h11

from adapters.simulator import DEMO_REFRESH_TOKEN, gateway_environment

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TOKEN = "bench-client-token-0123456789"

#: name -> command template ("{port}" is replaced).
SERVERS: dict[str, list[str]] = {
    "serve": [PYTHON, "-m", "adapters.cli", "serve", "--port", "{port}"],
    "uvicorn": [PYTHON, "-m", "uvicorn", "adapters.asgi:create_app", "--factory", "--port", "{port}", "--no-access-log",
                "--log-level", "warning"],
    "hypercorn": [PYTHON, "-m", "hypercorn", "adapters.asgi:create_app()", "--bind", "127.0.0.1:{port}"],
    "gevent": [PYTHON, "-m", "adapters.wsgi_gevent", "--port", "{port}"],
}


#: The ways of serving that speak HTTP/2 in cleartext (prior knowledge).
H2C = ("serve", "hypercorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(port: int, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=dict(headers))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def process(name: str, command: Sequence[str], port: int, env: Mapping[str, str],
            wrapped: bool = False) -> Iterator[int]:
    """Run ``command`` until the port answers, yield its pid, then stop it.

    ``wrapped``: the command is a wrapper (py-spy) around the server: the server is stopped first,
    so that the wrapper sees it exit and finishes its work (writes its profile)."""
    log = tempfile.TemporaryFile()
    popen = subprocess.Popen(list(command), env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=tempfile.gettempdir())
    try:
        deadline = time.monotonic() + 30
        while True:
            if popen.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{name} exited: {log.read()[-2000:].decode(errors='replace')}")
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.1)
        yield popen.pid
    finally:
        if wrapped:
            for child in _children(popen.pid):
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(20)
        popen.terminate()
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        log.close()


@dataclass
class Result:
    streams: int = 0
    errors: int = 0
    ttfb: list[float] = field(default_factory=list)
    seconds: float = 0.0
    #: CPU seconds (user + system) the serving process tree spent during the measurement.
    cpu: float = 0.0

    def add(self, other: Result) -> None:
        """Pool ``other``'s measurements into this one."""
        self.streams += other.streams
        self.errors += other.errors
        self.ttfb += other.ttfb
        self.seconds += other.seconds
        self.cpu += other.cpu

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds of the serving process tree per answer."""
        return self.cpu * 1000 / self.streams if self.streams else float("nan")

    @property
    def rate(self) -> float:
        return self.streams / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.ttfb:
            return float("nan")
        ordered = sorted(self.ttfb)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def _client(port: int, head: bytes, body: bytes, going: Callable[[], bool], result: Result) -> None:
    while going():
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            conn = h11.Connection(h11.CLIENT)
            while going():
                t0 = time.monotonic()
                await stream.send(head + body)
                conn.send(h11.Request(method="POST", target="/", headers=[("host", "x"), ("content-length", str(len(body)))]))
                conn.send(h11.Data(data=body))
                conn.send(h11.EndOfMessage())
                first: float | None = None
                status = 0
                try:
                    while True:
                        event = conn.next_event()
                        if event is h11.NEED_DATA:
                            conn.receive_data(await stream.receive(65536))
                        elif isinstance(event, h11.Response):
                            status = event.status_code
                        elif isinstance(event, h11.Data) and first is None:
                            first = time.monotonic() - t0
                        elif isinstance(event, h11.EndOfMessage):
                            break
                except (anyio.EndOfStream, anyio.BrokenResourceError, h11.RemoteProtocolError):
                    result.errors += 1
                    break
                if status == 200 and first is not None:
                    result.streams += 1
                    result.ttfb.append(first)
                else:
                    result.errors += 1
                if conn.states != {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
                    break  # the server closes this connection: open another
                conn.start_next_cycle()


async def _h2_client(
    port: int, path: str, headers: Mapping[str, str], body: bytes, going: Callable[[], bool], result: Result
) -> None:
    # The load generator's own HTTP/2 work competes with the servers for the same two cores: skip
    # h2's header validation and normalisation (the answers are checked by the conformance tests).
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False, normalize_outbound_headers=False,
        validate_inbound_headers=False, normalize_inbound_headers=False,
    ))
    conn.initiate_connection()
    request_headers = [(":method", "POST"), (":path", path), (":scheme", "http"), (":authority", "127.0.0.1")]
    request_headers += [*headers.items(), ("content-length", str(len(body)))]
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        while going():
            stream_id = conn.get_next_available_stream_id()
            t0 = time.monotonic()
            conn.send_headers(stream_id, request_headers)
            conn.send_data(stream_id, body, end_stream=True)
            await stream.send(conn.data_to_send())
            first: float | None = None
            status = 0
            ended = False
            while not ended:
                try:
                    data = await stream.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    result.errors += 1
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                        status = int(next(v for k, v in event.headers if k in (":status", b":status")))
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        if first is None and event.data:
                            first = time.monotonic() - t0
                    elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)) and event.stream_id == stream_id:
                        ended = True
                pending = conn.data_to_send()
                if pending:
                    await stream.send(pending)
            if status == 200 and first is not None:
                result.streams += 1
                result.ttfb.append(first)
            else:
                result.errors += 1


def load(
    port: int,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    concurrency: int,
    duration: float,
    *,
    http2: bool = False,
    stagger: float = 0.0,
    min_streams: int = 0,
) -> Result:
    """``concurrency`` clients streaming ``body`` again and again for ``duration`` seconds.

    ``stagger``: the clients start spread over this many seconds, so that answers of equal length
    do not arrive in waves of ``concurrency`` requests at once (a queue the server did not make).
    ``min_streams``: go on past ``duration`` (up to four times it) until this many answers were
    timed, so that a percentile of few slow clients is not one of a handful of samples.
    """
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    result = Result()

    async def main() -> None:
        until = time.monotonic() + duration
        limit = time.monotonic() + 4 * duration

        def going() -> bool:
            now = time.monotonic()
            return now < until or (result.streams < min_streams and now < limit)

        t0 = time.monotonic()
        async def client(delay: float) -> None:
            await anyio.sleep(delay)
            if http2:
                await _h2_client(port, path, headers, body, going, result)
            else:
                await _client(port, head, body, going, result)

        async with anyio.create_task_group() as tg:
            for i in range(concurrency):
                tg.start_soon(client, stagger * i / concurrency)
        result.seconds = time.monotonic() - t0

    anyio.run(main)
    return result


def last_kiro_body(sim_port: int) -> bytes:
    """The body of the newest generateAssistantResponse call the simulator received."""
    conn = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=10)
    conn.request("GET", "/_sim/requests")
    records = json.loads(conn.getresponse().read())["requests"]
    conn.close()
    calls = [r for r in records if r.get("endpoint") == "generateAssistantResponse"]
    return json.dumps(calls[-1]["body"]).encode()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> Iterator[int]:
    """``pid`` and its descendants (hypercorn's worker, the workers of ``--workers``), Linux."""
    pending = [pid]
    while pending:
        current = pending.pop()
        pending += _children(current)
        yield current


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its descendants, as the kernel counts them (Linux).

    Each process contributes its own time and that of the children it has reaped (cutime, cstime),
    so a worker that exited during the measurement is counted once and a live one (hypercorn's) is
    found by walking the tree. NaN where there is no /proc.
    """
    total = 0
    seen = False
    for current in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{current}/stat").read_text()
            # The command name (field 2) is in parentheses and may hold spaces: count from the last one.
            fields = stat[stat.rindex(")") + 2:].split()
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime (fields 14-17)
            seen = True
    return total / _CLOCK_TICKS if seen else float("nan")


@contextlib.contextmanager
def cpu_counted(pid: int, result: Result) -> Iterator[None]:
    """Add the CPU time process ``pid`` (and descendants) spends inside the block to ``result.cpu``."""
    before = cpu_seconds(pid)
    try:
        yield
    finally:
        result.cpu += cpu_seconds(pid) - before


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` and its descendants (hypercorn's worker) in MiB (Linux)."""
    total = 0
    for current in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024 if total else float("nan")


def hold_streams(port: int, headers: Mapping[str, str], body: bytes, count: int, pid: int) -> tuple[int, int, float, float]:
    """Open ``count`` slow streams at once; (started, failed, server RSS before, RSS with them open)."""
    lines = ["POST /v1/messages HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
    head = ("\r\n".join(lines + [f"{k}: {v}" for k, v in headers.items()]) + "\r\n\r\n").encode()
    before = rss_mib(pid)
    started = failed = 0
    everyone = anyio.Event()

    async def one() -> None:
        nonlocal started, failed
        try:
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(head + body)
                received = b""
                while b"content_block_delta" not in received:
                    received += await stream.receive(65536)
                started += 1
                if started == count:
                    everyone.set()
                await anyio.sleep_forever()
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError):
            failed += 1

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
            with anyio.move_on_after(60):
                await everyone.wait()
            await anyio.sleep(0.5)
            held = rss_mib(pid)
            tg.cancel_scope.cancel()
        return held

    held = anyio.run(main)
    return started, failed, before, held


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV") or k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 s per measurement, concurrency 1 and 16")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (default 3)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated client counts (default 1,16,64)")
    parser.add_argument("--frames", type=int, default=50, help="text frames per streamed answer (default 50)")
    parser.add_argument("--paced-frames", type=int, default=20, help="frames per paced answer (default 20)")
    parser.add_argument("--pace-ms", type=int, default=20, help="pause between paced frames (default 20 ms)")
    parser.add_argument("--http2", action="store_true", help="also measure HTTP/2 (h2c) where the server speaks it")
    parser.add_argument("--hold", type=int, default=1000, help="slow streams held open for the memory figure (0: skip)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"which to run (default {','.join(SERVERS)})")
    parser.add_argument("--loads", default="burst,paced", help="which loads to run (default burst,paced)")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/server alternations per cell (default 2)")
    args = parser.parse_args(argv)
    duration = 1.0 if args.quick else args.duration
    rounds = 1 if args.quick else max(1, args.rounds)
    levels = [1, 16] if args.quick else [int(n) for n in args.concurrency.split(",")]
    prompts = {
        "burst": f"[[sim:long:{args.frames}]] benchmark burst",
        "paced": f"[[sim:long:{args.paced_frames}]] [[sim:slow:{args.pace_ms}]] benchmark paced",
    }
    prompts = {name: prompts[name] for name in args.loads.split(",")}
    client_bodies = {
        load_name: json.dumps(
            {"model": "claude-sonnet-4-5", "max_tokens": 4000, "stream": True, "messages": [{"role": "user", "content": prompt}]}
        ).encode()
        for load_name, prompt in prompts.items()
    }
    client_headers = {"x-api-key": TOKEN, "content-type": "application/json"}
    # A paced answer lasts about this long; its clients start spread over it.
    stagger = {"burst": 0.0, "paced": args.paced_frames * args.pace_ms / 1000}
    # Few paced clients answer few streams in a cell: time at least this many.
    min_streams = {"burst": 0, "paced": 0 if args.quick else 40}

    sim_port = free_port()
    sim_command = [PYTHON, "-m", "adapters.simulator", "--port", str(sim_port), "--pace-ms", "0", "--log-level", "WARNING"]
    with process("simulator", sim_command, sim_port, base_env()) as sim_pid:
        sim_url = f"http://127.0.0.1:{sim_port}"
        env = base_env() | gateway_environment(sim_url) | {"KIRO_CLIENT_TOKEN": TOKEN, "KIRO_STATE": "memory://", "LOG_LEVEL": "WARNING"}
        # (load, server, clients) -> result
        results: dict[tuple[str, str, int], Result] = {}
        memory: dict[str, tuple[int, int, float, float]] = {}
        hold = 0 if args.quick else args.hold
        slow_body = json.dumps(
            {"model": "claude-sonnet-4-5", "max_tokens": 4000, "stream": True,
             "messages": [{"role": "user", "content": "[[sim:long:120]] [[sim:slow:1000]] held open"}]}
        ).encode()
        kiro_bodies: dict[str, bytes] = {}
        # The baseline: the same answers straight from the simulator (a token it issued, the body
        # kiro2api sent), over the same protocol (the client's own HTTP/2 work is then in both),
        # measured in turn with each cell: this machine's speed drifts over minutes.
        _, refreshed = _post(sim_port, "/refreshToken", json.dumps({"refreshToken": DEMO_REFRESH_TOKEN}).encode(),
                             {"content-type": "application/json"})
        access = json.loads(refreshed)["accessToken"]
        sim_headers = {"authorization": f"Bearer {access}", "content-type": "application/x-amz-json-1.0"}
        # (load, server, clients) -> the simulator alone, measured in turn with that cell
        baselines: dict[tuple[str, str, int], Result] = {}
        for name in args.servers.split(","):
            port = free_port()
            with process(name, [p.replace("{port}", str(port)) for p in SERVERS[name]], port, env) as pid:
                status, _ = _post(port, "/v1/messages", next(iter(client_bodies.values())), client_headers)  # warm-up
                if status != 200:
                    print(f"{name}: warm-up answered HTTP {status}; skipped")
                    continue
                for load_name, client_body in client_bodies.items():
                    if load_name not in kiro_bodies:
                        # The body kiro2api sends upstream for this answer, replayed for the baseline.
                        _post(port, "/v1/messages", client_body, client_headers)
                        kiro_bodies[load_name] = last_kiro_body(sim_port)
                    for level in levels:
                        variants = [(name, False)] + ([(f"{name}/h2", True)] if args.http2 and name in H2C else [])
                        for label, http2 in variants:
                            # Rounds of baseline and server in turn, pooled: a drift of the
                            # machine's speed then weighs on both alike.
                            alone, measured = Result(), Result()
                            for _ in range(rounds):
                                round_alone, round_measured = Result(), Result()
                                # The simulator's own CPU per answer, beside the gateway's: both
                                # are counted by the kernel and hold still on a busy machine,
                                # where the rates drift.
                                with cpu_counted(sim_pid, round_alone):
                                    round_alone.add(load(
                                        sim_port, "/generateAssistantResponse", sim_headers, kiro_bodies[load_name],
                                        level, duration / rounds, http2=http2, stagger=stagger[load_name],
                                        min_streams=-(-min_streams[load_name] // rounds),
                                    ))
                                with cpu_counted(pid, round_measured):
                                    round_measured.add(load(
                                        port, "/v1/messages", client_headers, client_body, level, duration / rounds,
                                        http2=http2, stagger=stagger[load_name],
                                        min_streams=-(-min_streams[load_name] // rounds),
                                    ))
                                alone.add(round_alone)
                                measured.add(round_measured)
                            baselines[load_name, label, level] = alone
                            results[load_name, label, level] = measured
        # Memory last (held streams keep the simulator busy for a while). Upstream connections are
        # pooled per account (at most 100 each), so enough accounts to carry every held stream and
        # one to spare (requests that start in the same instant may not see each other's choice).
        accounts: list[dict[str, object]] = [{"auth": "Social", "refreshToken": f"aorAAAAAG-bench-account-{i:03d}"} for i in range(-(-hold // 100) + 1)]
        hold_env = env | gateway_environment(sim_url, accounts=accounts) | {"TOKEN_SELECTION_STRATEGY": "round_robin"}
        for name in args.servers.split(",") if hold else ():
            port = free_port()
            with process(name, [p.replace("{port}", str(port)) for p in SERVERS[name]], port, hold_env) as pid:
                _post(port, "/v1/messages", next(iter(client_bodies.values())), client_headers)
                memory[name] = hold_streams(port, client_headers, slow_body, hold, pid)

    titles = {
        "burst": f"burst: {args.frames}-frame answers, no pause (throughput)",
        "paced": f"paced: {args.paced_frames}-frame answers, {args.pace_ms} ms apart (latency)",
    }
    for load_name in prompts:
        print(f"{titles[load_name]}; {duration:.0f} s per cell, keep-alive clients (HTTP/1.1; name/h2: HTTP/2)")
        print(
            f"{'server':<14} {'clients':>7} {'streams/s':>10} {'vs sim':>7} {'ttfb p50':>9} {'p95':>8} {'+p50 ms':>8}"
            f" {'cpu ms':>7} {'errors':>6}"
        )
        for level in levels:
            # The simulator's rows: all its measurements at this level pooled, per protocol.
            for protocol in ("", "/h2"):
                pooled = Result()
                for (kind, label, at), measured in baselines.items():
                    if kind == load_name and at == level and label.endswith("/h2") == (protocol == "/h2"):
                        pooled.add(measured)
                if pooled.seconds:
                    results[load_name, f"simulator{protocol}", level] = pooled
                    baselines[load_name, f"simulator{protocol}", level] = pooled
        rows = sorted(
            ((name, level, result) for (kind, name, level), result in results.items() if kind == load_name),
            key=lambda row: (row[1], not row[0].startswith("simulator"), row[0]),
        )
        for name, level, result in rows:
            base = baselines.get((load_name, name, level))
            ratio = result.rate / base.rate if base and base.rate else float("nan")
            added = result.percentile(0.5) - base.percentile(0.5) if base else float("nan")
            print(
                f"{name:<14} {level:>7} {result.rate:>10.1f} {ratio:>7.2f} {result.percentile(0.5):>8.2f}m"
                f" {result.percentile(0.95):>7.2f}m {added:>8.2f} {result.cpu_ms:>7.3f} {result.errors:>6}"
            )
        print()
    if memory:
        print(f"resident memory with {hold} slow streams open (server process and children)")
        print(f"{'server':<10} {'open':>6} {'failed':>6} {'idle MiB':>9} {'held MiB':>9} {'KiB/stream':>11}")
        for name, (started, failed, before, held) in memory.items():
            per = (held - before) * 1024 / started if started else float("nan")
            print(f"{name:<10} {started:>6} {failed:>6} {before:>9.1f} {held:>9.1f} {per:>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
